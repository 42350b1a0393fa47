-- 60% list, 20% get, 10% create, 10% toggle; see common.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

function request()
  local r = math.random()
  if r < 0.6 then
    return list_request()
  elseif r < 0.8 then
    return get_request()
  elseif r < 0.9 then
    return create_request()
  end
  return toggle_request()
end
