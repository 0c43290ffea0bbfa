-- wrk ... -s handshake.lua URL -- USER PASSWORD REALM
-- Home Assistant's pattern: a GET without credentials (401 + challenge), then one authorised with
-- the challenge's nonce and nc=1. wrk's Lua state is per thread, not per connection, so a
-- thread-wide queue hands each challenge's nonce to the next request any connection of the thread
-- sends; the server still sees exactly one 401 and one first-use login per pair, which is what
-- costs. Answers are counted by status (the 401s are expected, not errors).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "digest.lua")

local queue, first, last = {}, 1, 0

function init(args)
   digest_init(args)
   statuses = {}
end

function request()
   if first > last then
      return wrk.format("GET", wrk.path)
   end
   local nonce = queue[first]
   queue[first] = nil
   first = first + 1
   return digest_request(nonce, 1)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 401 then
      local nonce = (headers["WWW-Authenticate"] or headers["www-authenticate"] or ""):match('nonce="([^"]+)"')
      if nonce then
         last = last + 1
         queue[last] = nonce
      end
   end
end
