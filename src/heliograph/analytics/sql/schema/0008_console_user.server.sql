-- Server only (the embedded store records this file without running it). The SQL console runs
-- as `heliograph_console`, which may only SELECT the four console tables, and only the rows whose
-- organization_id equals the custom setting the API sends with every console query (Helicone's
-- `hql_user` approach). Needs `access_management` for the migrating user and
-- `<custom_settings_prefixes>SQL_</custom_settings_prefixes>` in the server config.
-- The password is derived from the main connection's password (see server_executor.py).
CREATE ROLE IF NOT EXISTS heliograph_console_role;
GRANT SELECT ON request_response TO heliograph_console_role;
GRANT SELECT ON request_annotations TO heliograph_console_role;
GRANT SELECT ON session_annotations TO heliograph_console_role;
GRANT SELECT ON request_rollup_hourly TO heliograph_console_role;
CREATE ROW POLICY IF NOT EXISTS heliograph_console_scope
    ON request_response, request_annotations, session_annotations, request_rollup_hourly
    USING organization_id = toUUIDOrZero(getSetting('SQL_heliograph_organization_id'))
    AS RESTRICTIVE TO heliograph_console_role;
CREATE USER IF NOT EXISTS heliograph_console
    IDENTIFIED WITH sha256_hash BY '{console_password_sha256}'
    DEFAULT ROLE heliograph_console_role
    SETTINGS readonly = 2;
GRANT heliograph_console_role TO heliograph_console
