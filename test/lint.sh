#!/bin/sh
# Fails if a banned call (style.md, habit 9) appears in the project's C code,
# or if SQL is assembled with printf-style formatting.
cd "$(dirname "$0")/.." || exit 1
status=0
banned=$(grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|atoll|gets|strtok)[[:space:]]*\(' \
	--include='*.c' --include='*.h' lib fcgi cli bench test 2>/dev/null)
if [ -n "$banned" ]; then
	echo "banned calls:"; echo "$banned"; status=1
fi
sqlfmt=$(grep -rnE '(snprintf|asprintf)[[:space:]]*\([^;]*"[[:space:]]*(SELECT|INSERT|UPDATE|DELETE)' \
	--include='*.c' lib fcgi cli 2>/dev/null)
if [ -n "$sqlfmt" ]; then
	echo "SQL built with printf-style formatting:"; echo "$sqlfmt"; status=1
fi
[ $status -eq 0 ] && echo "lint: ok"
exit $status
