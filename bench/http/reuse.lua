-- wrk -t T ... -s reuse.lua URL -- USER PASSWORD REALM T NONCE1 [NONCE2 ...]
-- Every request is authorised with a freshly computed response and the next nonce count on its
-- nonce (nc = 1, 2, 3, ...), as requests and httpx do between challenges. One nonce per connection
-- stands for one client each: wrk's Lua state is per thread, so a thread's requests take its
-- nonces in turn (thread k of T takes NONCEk, NONCEk+T, ...). The server remembers used counts per
-- nonce, so clients never share one.
-- No response() hook, so wrk does not buffer bodies; non-2xx answers show up as err_status.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "digest.lua")

local nonces, counts, turn = {}, {}, 0

function init(args)
   digest_init(args)
   local thread_total = tonumber(args[4])
   for i = 4 + (thread_index or 1), #args, thread_total do
      nonces[#nonces + 1] = args[i]
      counts[#counts + 1] = 0
   end
   assert(#nonces > 0, "at least one nonce per wrk thread")
end

function request()
   turn = turn % #nonces + 1
   counts[turn] = counts[turn] + 1
   return digest_request(nonces[turn], counts[turn])
end
