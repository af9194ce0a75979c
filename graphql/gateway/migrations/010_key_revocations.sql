-- Every gateway keeps the keys that authenticated lately for a few seconds (no query per request); a revocation, by
-- the API or by hand, is announced so that each forgets that key at once.
CREATE FUNCTION announce_key_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
        PERFORM pg_notify('haven_key_revoked', NEW.key_hash);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_key_revoked AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION announce_key_revoked();
