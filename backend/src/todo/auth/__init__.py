"""How a request proves who sends it: `header` (development) or `jwt` mode.

`todo.auth.current_user` turns the caller into a user id; nothing else knows the mode.
"""
