-- Why a spawn failed (ENOENT, EACCES, ...), with the state event it caused.
ALTER TABLE state_events ADD COLUMN error_code TEXT;
ALTER TABLE state_events ADD COLUMN error_message TEXT;
