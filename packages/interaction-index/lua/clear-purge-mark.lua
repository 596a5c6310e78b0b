-- Deletes the purge mark KEYS[1], only if it is an opt-out's (ARGV[2] = '1': the account came back) or only
-- if it is not (ARGV[2] = '0': a deleted account was reactivated). ARGV[1]: an opt-out's mark.
local v = redis.call('GET', KEYS[1])
if v and ((v == ARGV[1]) == (ARGV[2] == '1')) then redis.call('DEL', KEYS[1]) end
