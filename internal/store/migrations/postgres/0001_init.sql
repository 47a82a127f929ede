-- Parley schema, PostgreSQL dialect. Timestamps are BIGINT unix microseconds (UTC),
-- JSON is JSONB, binary is BYTEA. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    change_seq  BIGINT NOT NULL DEFAULT 0,
    pruned_seq  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversation_counters (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    last_number  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    avatar_url    TEXT NOT NULL DEFAULT '',
    availability  TEXT NOT NULL DEFAULT 'online',
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE teams (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX teams_workspace ON teams(workspace_id);

CREATE TABLE team_members (
    team_id      TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members(workspace_id, user_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_ws ON api_tokens(workspace_id, user_id);

CREATE TABLE provider_accounts (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    name         TEXT NOT NULL,
    config       JSONB NOT NULL DEFAULT '{}',
    secrets      JSONB NOT NULL DEFAULT '{}',
    secrets_enc  BYTEA,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX provider_accounts_ws ON provider_accounts(workspace_id);

CREATE TABLE channels (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL,
    name                TEXT NOT NULL,
    provider_account_id TEXT REFERENCES provider_accounts(id),
    config              JSONB NOT NULL DEFAULT '{}',
    secrets             JSONB NOT NULL DEFAULT '{}',
    secrets_enc         BYTEA,
    status              TEXT NOT NULL DEFAULT 'active',
    status_detail       TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX channels_ws ON channels(workspace_id);
CREATE INDEX channels_account ON channels(provider_account_id);

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    avatar_url   TEXT NOT NULL DEFAULT '',
    tags         JSONB NOT NULL DEFAULT '[]',
    attributes   JSONB NOT NULL DEFAULT '{}',
    notes        TEXT NOT NULL DEFAULT '',
    blocked      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX contacts_ws ON contacts(workspace_id, id);

CREATE TABLE contact_emails (
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    email        TEXT NOT NULL,
    position     BIGINT NOT NULL,
    PRIMARY KEY (contact_id, email)
);
CREATE INDEX contact_emails_lookup ON contact_emails(workspace_id, email);

CREATE TABLE contact_phones (
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    phone        TEXT NOT NULL,
    position     BIGINT NOT NULL,
    PRIMARY KEY (contact_id, phone)
);
CREATE INDEX contact_phones_lookup ON contact_phones(workspace_id, phone);

CREATE TABLE contact_identities (
    workspace_id TEXT NOT NULL,
    channel_id   TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    identifier   TEXT NOT NULL,
    contact_id   TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, channel_id, identifier)
);
CREATE INDEX contact_identities_contact ON contact_identities(contact_id);

CREATE TABLE labels (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    color        TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE conversations (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    number                 BIGINT NOT NULL,
    channel_id             TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id             TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    status                 TEXT NOT NULL DEFAULT 'open',
    priority               TEXT NOT NULL DEFAULT 'none',
    snoozed_until          BIGINT,
    assignee_id            TEXT REFERENCES users(id) ON DELETE SET NULL,
    team_id                TEXT REFERENCES teams(id) ON DELETE SET NULL,
    is_group               BOOLEAN NOT NULL DEFAULT FALSE,
    title                  TEXT NOT NULL DEFAULT '',
    group_meta             JSONB,
    external_chat_id       TEXT NOT NULL DEFAULT '',
    last_activity_at       BIGINT NOT NULL,
    last_message_preview   TEXT NOT NULL DEFAULT '',
    last_message_at        BIGINT,
    last_message_direction TEXT NOT NULL DEFAULT '',
    last_inbound_at        BIGINT,
    inbound_count          BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (workspace_id, number)
);
CREATE INDEX conversations_activity ON conversations(workspace_id, last_activity_at, id);
CREATE INDEX conversations_status ON conversations(workspace_id, status, last_activity_at, id);
CREATE INDEX conversations_assignee ON conversations(workspace_id, assignee_id, last_activity_at, id);
CREATE INDEX conversations_team ON conversations(workspace_id, team_id, last_activity_at);
CREATE INDEX conversations_channel ON conversations(workspace_id, channel_id, last_activity_at);
CREATE INDEX conversations_contact ON conversations(contact_id);
CREATE INDEX conversations_chat ON conversations(channel_id, external_chat_id);

CREATE TABLE conversation_participants (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id      TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    role            TEXT NOT NULL DEFAULT '',
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, contact_id)
);
CREATE INDEX conversation_participants_contact ON conversation_participants(contact_id);

CREATE TABLE conversation_labels (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    label_id        TEXT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, label_id)
);
CREATE INDEX conversation_labels_label ON conversation_labels(label_id, conversation_id);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL,
    direction       TEXT NOT NULL,
    sender_type     TEXT NOT NULL,
    sender_id       TEXT NOT NULL DEFAULT '',
    sender_name     TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL DEFAULT 'text',
    text            TEXT NOT NULL DEFAULT '',
    content         JSONB,
    location        JSONB,
    external_id     TEXT NOT NULL DEFAULT '',
    reply_to_id     TEXT,
    status          TEXT NOT NULL,
    error           TEXT NOT NULL DEFAULT '',
    private         BOOLEAN NOT NULL DEFAULT FALSE,
    mentions        JSONB,
    previous_text   TEXT NOT NULL DEFAULT '',
    edited_at       BIGINT,
    deleted_at      BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX messages_history ON messages(conversation_id, created_at, id);
CREATE UNIQUE INDEX messages_external ON messages(workspace_id, channel_id, external_id) WHERE external_id <> '';
CREATE INDEX messages_sender ON messages(workspace_id, sender_type, sender_id);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    message_id   TEXT REFERENCES messages(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    mime_type    TEXT NOT NULL DEFAULT '',
    filename     TEXT NOT NULL DEFAULT '',
    size         BIGINT NOT NULL DEFAULT 0,
    duration_ms  BIGINT NOT NULL DEFAULT 0,
    width        BIGINT NOT NULL DEFAULT 0,
    height       BIGINT NOT NULL DEFAULT 0,
    provider_ref TEXT NOT NULL DEFAULT '',
    storage_key  TEXT NOT NULL DEFAULT '',
    sha256       TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE reactions (
    message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_name   TEXT NOT NULL DEFAULT '',
    emoji        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (message_id, actor_type, actor_id)
);

CREATE TABLE message_statuses (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (message_id, status)
);

CREATE TABLE read_state (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL,
    last_read_at    BIGINT NOT NULL,
    read_count      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE inbound_log (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    channel_id   TEXT NOT NULL,
    chat_key     TEXT NOT NULL DEFAULT '',
    received_at  BIGINT NOT NULL,
    headers      JSONB NOT NULL DEFAULT '{}',
    body         BYTEA NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     BIGINT NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    processed_at BIGINT
);
CREATE INDEX inbound_log_pending ON inbound_log(state, next_attempt_at, received_at);
CREATE INDEX inbound_log_chat ON inbound_log(channel_id, chat_key, received_at);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL,
    message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    locked_until    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_message ON outbox(message_id);

CREATE TABLE changes (
    workspace_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    entity       TEXT NOT NULL,
    op           TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    data         JSONB,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX changes_created ON changes(created_at);

-- Conversation totals per (workspace, status, assignee), kept by triggers so
-- queue totals never scan the conversations table.
CREATE TABLE conversation_counts (
    workspace_id TEXT NOT NULL,
    status       TEXT NOT NULL,
    assignee_id  TEXT NOT NULL DEFAULT '',
    n            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, status, assignee_id)
);

-- Statement-level triggers with transition tables: one grouped write per
-- statement (a row-level trigger would update the same counter row once per
-- inserted conversation). Updates only touch counters of rows whose status or
-- assignee changed, so activity updates never write the counters.
CREATE FUNCTION conversation_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO conversation_counts (workspace_id, status, assignee_id, n)
    SELECT workspace_id, status, COALESCE(assignee_id, ''), COUNT(*) FROM new_rows GROUP BY 1, 2, 3
    ON CONFLICT (workspace_id, status, assignee_id) DO UPDATE SET n = conversation_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION conversation_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_counts cc SET n = cc.n - d.k
    FROM (SELECT workspace_id, status, COALESCE(assignee_id, '') AS assignee_id, COUNT(*) AS k FROM old_rows GROUP BY 1, 2, 3) d
    WHERE cc.workspace_id = d.workspace_id AND cc.status = d.status AND cc.assignee_id = d.assignee_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION conversation_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_counts cc SET n = cc.n - d.k
    FROM (SELECT o.workspace_id, o.status, COALESCE(o.assignee_id, '') AS assignee_id, COUNT(*) AS k
          FROM old_rows o JOIN new_rows nw ON nw.id = o.id
          WHERE o.status <> nw.status OR COALESCE(o.assignee_id, '') <> COALESCE(nw.assignee_id, '')
          GROUP BY 1, 2, 3) d
    WHERE cc.workspace_id = d.workspace_id AND cc.status = d.status AND cc.assignee_id = d.assignee_id;
    INSERT INTO conversation_counts (workspace_id, status, assignee_id, n)
    SELECT nw.workspace_id, nw.status, COALESCE(nw.assignee_id, ''), COUNT(*)
    FROM old_rows o JOIN new_rows nw ON nw.id = o.id
    WHERE o.status <> nw.status OR COALESCE(o.assignee_id, '') <> COALESCE(nw.assignee_id, '')
    GROUP BY 1, 2, 3
    ON CONFLICT (workspace_id, status, assignee_id) DO UPDATE SET n = conversation_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_count_insert AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_insert();
CREATE TRIGGER conversations_count_delete AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_delete();
CREATE TRIGGER conversations_count_update AFTER UPDATE ON conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION conversation_counts_update();
