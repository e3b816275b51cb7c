import { useState } from 'preact/hooks';
import { post, type AuthKeyRow, type NewKey } from './api.js';
import { Message } from './message.js';
import { useAction, useData, when, type PageProps } from './use-data.js';

const EXPIRY: Record<string, number | null> = { never: null, '1h': 3_600_000, '1d': 86_400_000, '7d': 7 * 86_400_000, '90d': 90 * 86_400_000 };

export function KeysPage({ tick, onAuthError }: PageProps) {
  const { data, error, reload } = useData<AuthKeyRow[]>('authkeys', tick, onAuthError);
  const { message, run } = useAction(reload, onAuthError);
  const [reusable, setReusable] = useState(false);
  const [ephemeral, setEphemeral] = useState(false);
  const [expiry, setExpiry] = useState('1d');
  const [owner, setOwner] = useState('');
  // the address this page was reached at is usually the one nodes use; with --admin-listen it is not: edit it
  const [controlUrl, setControlUrl] = useState(location.origin);
  const [created, setCreated] = useState<NewKey | null>(null);
  const create = (e: Event) => {
    e.preventDefault();
    const o = owner.trim();
    const body = {
      reusable,
      ephemeral,
      expiryMs: EXPIRY[expiry] ?? null,
      ...(controlUrl.trim() === '' ? {} : { controlUrls: [controlUrl.trim()] }),
      ...(o === '' ? {} : o.startsWith('tag:') ? { tags: o.split(',').map((t) => t.trim()) } : { user: o }),
    };
    void run('auth key created', async () => setCreated(await post<NewKey>('authkeys', body)));
  };
  return (
    <>
      <section aria-labelledby="new-key">
        <h2 id="new-key">New auth key</h2>
        <form class="card form" onSubmit={create}>
          <div class="check">
            <input id="k-reusable" type="checkbox" checked={reusable} onChange={(e) => setReusable(e.currentTarget.checked)} />
            <label for="k-reusable">Reusable (registers any number of nodes)</label>
          </div>
          <div class="check">
            <input id="k-ephemeral" type="checkbox" checked={ephemeral} onChange={(e) => setEphemeral(e.currentTarget.checked)} />
            <label for="k-ephemeral">Ephemeral (its nodes are deleted when offline)</label>
          </div>
          <label for="k-expiry">Key expires after</label>
          <select id="k-expiry" value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
            {Object.keys(EXPIRY).map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
          <label for="k-owner">Owner user, or tags (tag:a,tag:b)</label>
          <input id="k-owner" value={owner} onInput={(e) => setOwner(e.currentTarget.value)} placeholder="optional" />
          <label for="k-control-url">Control URL nodes join at (for a join string; empty for the key alone)</label>
          <input id="k-control-url" value={controlUrl} onInput={(e) => setControlUrl(e.currentTarget.value)} placeholder="https://host:port" />
          <button type="submit">Create key</button>
        </form>
      </section>
      <Message m={message} />
      {created && (
        <section class="card secret" aria-labelledby="created-key">
          <h2 id="created-key">Key {created.id}: shown only now</h2>
          <p>Copy it now: the server keeps only its hash.</p>
          <label for="created-key-text">Auth key</label>
          <textarea id="created-key-text" readOnly rows={2} value={created.key} onFocus={(e) => e.currentTarget.select()} />
          {created.join && (
            <>
              <label for="created-join">Join string</label>
              <textarea id="created-join" readOnly rows={3} value={created.join} onFocus={(e) => e.currentTarget.select()} />
            </>
          )}
          <img
            class="qr"
            src={`data:image/svg+xml;base64,${btoa(created.qrSvg)}`}
            alt={`QR code of ${created.join ? 'the join string' : 'auth key'} ${created.id}`}
            width={200}
            height={200}
          />
          <button type="button" onClick={() => setCreated(null)}>
            Done, hide it
          </button>
        </section>
      )}
      <section aria-labelledby="key-list">
        <h2 id="key-list">Keys</h2>
        {error && <p class="error">{error}</p>}
        <table class="stack">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Owner / tags</th>
              <th scope="col">Kind</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Used</th>
              <th scope="col">State</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(data ?? []).map((k) => (
              <tr key={k.id} data-key={k.id}>
                <td data-label="ID">
                  <code>{k.id}</code>
                </td>
                <td data-label="Owner / tags">{k.user ?? (k.tags.join(', ') || '—')}</td>
                <td data-label="Kind">{[k.reusable ? 'reusable' : 'single-use', ...(k.ephemeral ? ['ephemeral'] : [])].join(', ')}</td>
                <td data-label="Created">{when(k.created)}</td>
                <td data-label="Expires">{k.expires === null ? 'never' : when(k.expires)}</td>
                <td data-label="Used">{k.used}</td>
                <td data-label="State" class="state">
                  {k.revoked ? 'revoked' : k.expired ? 'expired' : 'valid'}
                </td>
                <td data-label="Actions" class="actions">
                  {!k.revoked && (
                    <button
                      type="button"
                      class="danger"
                      aria-label={`Revoke key ${k.id}`}
                      onClick={() => run(`key ${k.id} revoked`, () => post('authkeys/revoke', { id: k.id }))}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
