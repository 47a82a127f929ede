// API JSON shapes, mirroring internal/inbox/types.go and API.md.

export type Role = 'owner' | 'admin' | 'agent';
export type Availability = 'online' | 'away' | 'busy';

export interface User {
  id: string;
  email: string;
  name: string;
  avatar_url: string;
  availability: Availability | string;
  created_at: string;
}

export interface WorkspaceRef {
  id: string;
  name: string;
  role: Role;
}

export interface Workspace {
  id: string;
  name: string;
  created_at: string;
}

export interface Me {
  user: User;
  workspaces: WorkspaceRef[];
  csrf_token: string;
}

export interface Member extends User {
  role: Role;
  team_ids: string[] | null;
  joined_at: string;
}

export interface Team {
  id: string;
  name: string;
  description: string;
  member_ids: string[] | null;
  created_at: string;
}

export interface SecretState {
  configured: boolean;
}

export interface Channel {
  id: string;
  workspace_id?: string;
  kind: string;
  name: string;
  provider_account_id?: string;
  config: Record<string, unknown> | null;
  secrets: Record<string, SecretState> | null;
  webhook_url: string;
  status: string;
  status_detail?: string;
  created_at: string;
  updated_at: string;
}

export interface ProviderAccount {
  id: string;
  provider: string;
  name: string;
  config: Record<string, unknown> | null;
  secrets: Record<string, SecretState> | null;
  created_at: string;
  updated_at: string;
}

export interface Identity {
  channel_id: string;
  channel_kind: string;
  identifier: string;
}

export interface Contact {
  id: string;
  name: string;
  avatar_url: string;
  emails: string[] | null;
  phones: string[] | null;
  identities: Identity[] | null;
  tags: string[] | null;
  attributes: Record<string, unknown> | null;
  notes?: string;
  blocked: boolean;
  created_at: string;
  updated_at?: string;
}

export interface ContactRef {
  id: string;
  name: string;
  avatar_url: string;
}

export type ConversationStatus = 'open' | 'pending' | 'snoozed' | 'resolved' | 'spam';

export interface LastMessage {
  preview: string;
  at: string;
  direction: 'inbound' | 'outbound' | string;
}

export interface Conversation {
  id: string;
  number: number;
  channel_id: string;
  channel_kind: string;
  contact: ContactRef;
  status: ConversationStatus | string;
  priority?: string;
  snoozed_until?: string | null;
  assignee_id: string | null;
  team_id: string | null;
  labels: string[] | null;
  is_group: boolean;
  title: string;
  group_meta?: Record<string, unknown>;
  external_chat_id?: string;
  last_message: LastMessage | null;
  last_inbound_at?: string | null;
  unread_count: number;
  created_at: string;
  updated_at: string;
}

export interface Participant {
  contact_id: string;
  name: string;
  identifier: string;
  role?: string;
  joined_at: string;
}

export type MessageKind =
  | 'text' | 'image' | 'audio' | 'voice' | 'video' | 'document' | 'location'
  | 'contacts' | 'sticker' | 'template' | 'interactive' | 'unsupported';

export type MessageStatus = 'received' | 'queued' | 'sent' | 'delivered' | 'read' | 'failed';

export interface Actor {
  type: 'contact' | 'agent' | 'bot' | 'system' | string;
  id: string;
  name: string;
}

export interface Location {
  latitude: number;
  longitude: number;
  name?: string;
  address?: string;
  url?: string;
}

export interface Attachment {
  id: string;
  message_id?: string;
  kind: string;
  mime_type: string;
  filename: string;
  size: number;
  url: string;
  duration_ms?: number;
  width?: number;
  height?: number;
}

export interface Reaction {
  emoji: string;
  by: Actor;
}

export interface Message {
  id: string;
  conversation_id: string;
  direction: 'inbound' | 'outbound' | string;
  sender: Actor;
  kind: MessageKind | string;
  text: string;
  content?: unknown;
  attachments: Attachment[] | null;
  location: Location | null;
  reply_to_id: string | null;
  reactions: Reaction[] | null;
  status: MessageStatus | string;
  error: string;
  external_id: string;
  private: boolean;
  mentions?: string[];
  previous_text?: string;
  edited_at: string | null;
  deleted_at: string | null;
  created_at: string;
}

export interface Label {
  id: string;
  name: string;
  color: string;
  description: string;
  created_at: string;
}

export interface ReadState {
  conversation_id: string;
  user_id: string;
  last_read_at: string;
  unread_count: number;
}

export type Entity =
  | 'conversation' | 'message' | 'contact' | 'label' | 'member' | 'team' | 'channel' | 'read_state';

export interface Change {
  seq: number;
  entity: Entity | string;
  op: 'upsert' | 'delete';
  id: string;
  data: unknown;
  at?: string;
}

export interface Snapshot {
  cursor: string;
  conversations: Conversation[] | null;
  labels: Label[] | null;
  members: Member[] | null;
  channels: Channel[] | null;
  teams?: Team[] | null;
}

export interface Page<T> {
  items: T[] | null;
  next_cursor: string | null;
  total?: number;
}

export interface SyncPage {
  changes: Change[] | null;
  cursor: string;
  more: boolean;
}

export interface Upload {
  id: string;
  mime_type: string;
  size: number;
  filename: string;
}

export type ServerFrame =
  | ({ type: 'change' } & Change)
  | { type: 'typing'; conversation_id: string; user_id: string; state: 'on' | 'off' | string }
  | { type: 'presence'; user_id: string; status: string }
  | { type: 'viewers'; conversation_id: string; user_ids: string[] | null }
  | { type: 'resync' }
  | {
      type: 'hello';
      cursor?: string;
      user_id?: string;
      presence?: Record<string, string> | null;
      viewers?: Record<string, string[] | null> | null;
    }
  | { type: 'pong' };
