-- SPDX-License-Identifier: ISC
--
-- wrk script for bench/run.sh: GET of one client per org, going round the
-- orgs request by request, each with its own session.
--
--   wrk ... -s bench/orgs.lua http://HOST/ -- TARGETS_FILE
--
-- TARGETS_FILE has one "path cookie-token" line per org; every thread starts
-- at another line so that the orgs are read evenly at every moment.

local nsetup = 0

function setup(thread)
   thread:set("tindex", nsetup)
   nsetup = nsetup + 1
end

function init(args)
   local file = args[1]
   if file == nil then
      error("orgs.lua: argument: TARGETS_FILE")
   end
   reqs = {}
   for l in io.lines(file) do
      local path, token = l:match("^(%S+)%s+(%S+)%s*$")
      if path ~= nil then
         table.insert(reqs, wrk.format("GET", path, { ["Cookie"] = "immidb_session=" .. token }))
      end
   end
   if #reqs == 0 then
      error("orgs.lua: no targets in " .. file)
   end
   nexti = (tindex or 0) % #reqs
end

function request()
   nexti = nexti % #reqs + 1
   return reqs[nexti]
end
