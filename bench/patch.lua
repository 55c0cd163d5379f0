-- SPDX-License-Identifier: ISC
--
-- wrk script for bench/run.sh: PATCH of one client at a time, with the
-- optimistic-concurrency version every PATCH must carry.
--
--   wrk -t T -c C ... -H 'Cookie: ...' -H 'X-CSRF-Token: ...' \
--       -s bench/patch.lua http://HOST/api/v1/orgs/ORG/clients -- IDS_FILE T C
--
-- IDS_FILE has one "id version" line per client (the current versions).
-- Thread k of T owns the clients on lines k+1, k+1+T, k+1+2T ... (disjoint
-- sets, so no two threads ever write the same record) and round-robins over
-- them; each owns at least 4x its connections, so that by the time it comes
-- back to a client, that client's previous PATCH has long been answered. As a
-- second guard, a client whose PATCH is still in flight is skipped (counted as
-- "skipped"). Each PATCH sends {"version":N,"phone":"+1 555 <counter>"}: the
-- counter makes every value new, or the server would write nothing. response()
-- reads "id" and "version" back from the record of each 200 answer.
--
-- done() prints one line for run.sh:
--   patch-statuses 200=N 409=N other=N skipped=N clients=N
-- 409s mean a stale version was sent, i.e. this script's bookkeeping is wrong.

local threads = {}
local nsetup = 0

function setup(thread)
   thread:set("tindex", nsetup)
   nsetup = nsetup + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads, nconns = args[1], tonumber(args[2]), tonumber(args[3])
   if file == nil or nthreads == nil or nconns == nil then
      error("patch.lua: arguments: IDS_FILE THREADS CONNECTIONS")
   end
   ids, version, inflight = {}, {}, {}
   local line = 0
   for l in io.lines(file) do
      local id, v = l:match("^(%S+)%s+(%d+)%s*$")
      if id ~= nil then
         if line % nthreads == tindex then
            table.insert(ids, id)
            version[id] = tonumber(v)
         end
         line = line + 1
      end
   end
   local need = 4 * math.ceil(nconns / nthreads)
   if #ids < need then
      error(string.format("patch.lua: thread %d has %d clients, needs at least %d", tindex, #ids, need))
   end
   nclients = #ids
   pos = 0
   counter = 0
   n200, n409, nother, skipped = 0, 0, 0, 0
   wrk.method = "PATCH"
   wrk.headers["Content-Type"] = "application/json"
   base = wrk.path:gsub("/+$", "")
end

function request()
   local id
   -- The next client not in flight; after one full turn, the next anyway.
   for _ = 1, nclients do
      pos = pos % nclients + 1
      id = ids[pos]
      if not inflight[id] then
         break
      end
      skipped = skipped + 1
   end
   inflight[id] = true
   counter = counter + 1
   -- tindex in the value too: threads never share a client, but this keeps
   -- every value in the org distinct.
   local body = string.format('{"version":%d,"phone":"+1 555 %d%07d"}', version[id], tindex, counter)
   return wrk.format(nil, base .. "/" .. id, nil, body)
end

function response(status, headers, body)
   if status == 200 then
      local id = body:match('"id":"([^"]+)"')
      local v = body:match('"version":(%d+)')
      if id ~= nil and v ~= nil and version[id] ~= nil then
         version[id] = tonumber(v)
         inflight[id] = nil
         n200 = n200 + 1
      else
         nother = nother + 1
      end
   elseif status == 409 then
      n409 = n409 + 1
   else
      nother = nother + 1
   end
end

function done(summary, latency, requests)
   local t200, t409, tother, tskipped, tclients = 0, 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      t200 = t200 + (thread:get("n200") or 0)
      t409 = t409 + (thread:get("n409") or 0)
      tother = tother + (thread:get("nother") or 0)
      tskipped = tskipped + (thread:get("skipped") or 0)
      tclients = tclients + (thread:get("nclients") or 0)
   end
   io.write(string.format("patch-statuses 200=%d 409=%d other=%d skipped=%d clients=%d\n",
                          t200, t409, tother, tskipped, tclients))
end
