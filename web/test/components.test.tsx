import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { I18nProvider } from '../src/i18n';
import { Composer } from '../src/components/Composer';
import { QueueRow } from '../src/components/Queue';
import type { Member } from '../src/api/types';
import { conv } from './fixtures';

afterEach(cleanup);

const member: Member = {
  id: 'u2', email: 'bob@example.com', name: 'Bob Stone', avatar_url: '', availability: 'online',
  created_at: '', role: 'agent', team_ids: [], joined_at: '',
};

function renderComposer(onSend = vi.fn().mockResolvedValue(undefined), c = conv('a')) {
  render(
    <I18nProvider lang="en">
      <Composer ws="w" conv={c} channel={undefined} members={[member]} replyTo={null} onCancelReply={() => undefined} onSend={onSend} />
    </I18nProvider>,
  );
  return { onSend, input: screen.getByRole('textbox', { name: 'Reply' }) as HTMLTextAreaElement };
}

describe('Composer', () => {
  it('Enter sends, Shift+Enter does not', async () => {
    const { onSend, input } = renderComposer();
    fireEvent.change(input, { target: { value: 'hello' } });
    fireEvent.keyDown(input, { key: 'Enter', shiftKey: true });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.keyDown(input, { key: 'Enter' });
    await waitFor(() => expect(onSend).toHaveBeenCalledTimes(1));
    expect(onSend.mock.calls[0]?.[0]).toMatchObject({ text: 'hello', private: false });
    await waitFor(() => expect(input.value).toBe(''));
  });

  it('does not send an empty message', () => {
    const { onSend, input } = renderComposer();
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
  });

  it('shows the server error and keeps the text', async () => {
    const { input } = renderComposer(vi.fn().mockRejectedValue(new Error('outside the reply window')));
    fireEvent.change(input, { target: { value: 'late' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(await screen.findByRole('alert')).toHaveProperty('textContent', 'outside the reply window');
    expect(input.value).toBe('late');
  });

  it('private notes autocomplete @mentions of members', async () => {
    const { onSend } = renderComposer();
    fireEvent.click(screen.getByRole('checkbox'));
    const note = screen.getByRole('textbox', { name: 'Private note' }) as HTMLTextAreaElement;
    fireEvent.change(note, { target: { value: 'ask @bo', selectionStart: 7 } });
    const option = await screen.findByRole('button', { name: 'Mention Bob Stone' });
    fireEvent.click(option);
    expect(note.value).toBe('ask @Bob Stone ');
    fireEvent.keyDown(note, { key: 'Enter' });
    await waitFor(() => expect(onSend).toHaveBeenCalled());
    expect(onSend.mock.calls[0]?.[0]).toMatchObject({ private: true, text: 'ask @Bob Stone ' });
  });

  it('shows the SMS segment counter for SMS conversations', () => {
    const { input } = renderComposer(undefined, conv('s', { channel_kind: 'twilio_sms' }));
    fireEvent.change(input, { target: { value: 'a'.repeat(161) } });
    expect(screen.getByText(/GSM-7: 161 chars · 2 segment/)).toBeTruthy();
  });

  it('asks for a template when the WhatsApp window is closed', () => {
    render(
      <I18nProvider lang="en">
        <Composer
          ws="w"
          conv={conv('w', { channel_kind: 'whatsapp', last_inbound_at: '2020-01-01T00:00:00Z' })}
          channel={undefined}
          members={[]}
          replyTo={null}
          onCancelReply={() => undefined}
          onSend={vi.fn()}
        />
      </I18nProvider>,
    );
    expect(screen.getByText(/24-hour WhatsApp window is closed/)).toBeTruthy();
    expect(screen.getByRole('textbox', { name: 'Template name' })).toBeTruthy();
  });
});

describe('QueueRow', () => {
  it('shows name, preview, unread badge, group marker and labels', () => {
    const c = conv('g', {
      is_group: true,
      title: 'Team chat',
      unread_count: 3,
      labels: ['l1'],
      assignee_id: 'u2',
      last_message: { preview: 'see you', at: new Date().toISOString(), direction: 'inbound' },
    });
    render(
      <I18nProvider lang="en">
        <MemoryRouter>
          <QueueRow
            conv={c}
            href="/x"
            selected={false}
            focused={false}
            labels={{ l1: { id: 'l1', name: 'VIP', color: '#f00', description: '', created_at: '' } }}
            assignee={member}
            meId="u1"
          />
        </MemoryRouter>
      </I18nProvider>,
    );
    const link = screen.getByRole('link');
    expect(link.getAttribute('aria-label')).toBe('Team chat, 3 unread');
    expect(screen.getByText('see you')).toBeTruthy();
    expect(screen.getByText('3')).toBeTruthy();
    expect(screen.getByRole('img', { name: 'Group' })).toBeTruthy();
    expect(screen.getByText('VIP')).toBeTruthy();
    expect(screen.getByRole('img', { name: 'Assigned to Bob Stone' })).toBeTruthy();
  });
});
