-- Shared by reuse.lua and handshake.lua: the client side of HTTP Digest (RFC 7616, MD5,
-- qop=auth) for wrk, computed per request through libcrypto's MD5 (LuaJIT FFI), as a real
-- client does; no header is ever replayed.
local ffi = require("ffi")
ffi.cdef [[ unsigned char *MD5(const unsigned char *d, size_t n, unsigned char *md); ]]

local ok, libcrypto = pcall(function() local _ = ffi.C.MD5; return ffi.C end)
if not ok then libcrypto = ffi.load("crypto") end

local hexbyte = {}
for b = 0, 255 do hexbyte[b] = string.format("%02x", b) end
local digest_buf = ffi.new("unsigned char[16]")

function md5_hex(text)
   libcrypto.MD5(text, #text, digest_buf)
   local out = {}
   for k = 0, 15 do out[k + 1] = hexbyte[digest_buf[k]] end
   return table.concat(out)
end

-- setup() runs in the main Lua state: number the threads and keep them for done().
threads = {}
function setup(thread)
   threads[#threads + 1] = thread
   thread:set("thread_index", #threads)
end

local user, realm, path, ha1, ha2, cnonce

-- args: USER PASSWORD REALM (the script's own arguments follow)
function digest_init(args)
   user, realm = args[1], args[3]
   assert(user and args[2] and realm, "args: USER PASSWORD REALM ...")
   path = wrk.path
   ha1 = md5_hex(user .. ":" .. realm .. ":" .. args[2])
   ha2 = md5_hex("GET:" .. path)
   cnonce = string.format("%08x%04x", os.time(), thread_index or 0)
end

-- One GET with a freshly computed Authorization header for `nonce` and count `nc`.
function digest_request(nonce, nc)
   local nc_hex = string.format("%08x", nc)
   local response = md5_hex(ha1 .. ":" .. nonce .. ":" .. nc_hex .. ":" .. cnonce .. ":auth:" .. ha2)
   return wrk.format("GET", path, { Authorization = 'Digest username="' .. user .. '", realm="' ..
      realm .. '", nonce="' .. nonce .. '", uri="' .. path .. '", algorithm=MD5, response="' ..
      response .. '", qop=auth, nc=' .. nc_hex .. ', cnonce="' .. cnonce .. '"' })
end

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
