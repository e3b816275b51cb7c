import { useState } from 'preact/hooks';
import { post, type NodeRow } from './api.js';
import { Message } from './message.js';
import { useAction, useData, when, type PageProps } from './use-data.js';

const owner = (n: NodeRow): string => n.user ?? (n.tags.length ? n.tags.join(', ') : '—');

export function NodesPage({ tick, onAuthError }: PageProps) {
  const { data, error, reload } = useData<NodeRow[]>('nodes', tick, onAuthError);
  const { message, run } = useAction(reload, onAuthError);
  const [filter, setFilter] = useState('');
  const [renaming, setRenaming] = useState<{ id: number; name: string } | null>(null);
  const [deleting, setDeleting] = useState<number | null>(null);
  const f = filter.trim().toLowerCase();
  const rows = (data ?? []).filter(
    (n) => !f || [n.name, owner(n), n.os, n.version, ...n.addresses, n.online ? 'online' : 'offline'].some((x) => x.toLowerCase().includes(f)),
  );
  return (
    <section aria-labelledby="nodes-list">
      <h2 id="nodes-list" class="visually-hidden">
        Node list
      </h2>
      <div class="toolbar">
        <label for="node-filter">Filter nodes</label>
        <input id="node-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="name, owner, address, os" />
      </div>
      <Message m={message} />
      {error && <p class="error">{error}</p>}
      <table class="stack">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Owner / tags</th>
            <th scope="col">Addresses</th>
            <th scope="col">OS, version</th>
            <th scope="col">Last seen</th>
            <th scope="col">Home relay</th>
            <th scope="col">Paths</th>
            <th scope="col">Key expiry</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((n) => (
            <tr key={n.id} data-node={n.name}>
              <td data-label="Name">
                <div>
                  <span class={n.online ? 'dot on' : 'dot'} aria-hidden="true" />
                  <strong>{n.name}</strong> <span class="state">{n.online ? 'online' : 'offline'}</span>
                  {n.pending && <span class="badge">pending</span>}
                  {n.expired && <span class="badge">expired</span>}
                </div>
              </td>
              <td data-label="Owner / tags">{owner(n)}</td>
              <td data-label="Addresses">
                <div>
                  {n.addresses.map((a) => (
                    <div key={a}>
                      <code>{a}</code>
                    </div>
                  ))}
                </div>
              </td>
              <td data-label="OS, version">
                <span>{`${n.os} ${n.version}`}</span>
              </td>
              <td data-label="Last seen">{n.online ? 'now' : when(n.lastSeen)}</td>
              <td data-label="Home relay">{n.homeRelay ?? '—'}</td>
              <td data-label="Paths">{n.paths ? `${n.paths.direct} direct · ${n.paths.relay} relay` : 'not reported'}</td>
              <td data-label="Key expiry">{n.keyExpiry === null ? 'never' : when(n.keyExpiry)}</td>
              <td data-label="Actions" class="actions">
                {renaming?.id === n.id ? (
                  <form
                    class="inline"
                    onSubmit={(e) => {
                      e.preventDefault();
                      const name = renaming.name;
                      setRenaming(null);
                      void run(`${n.name} renamed to ${name}`, () => post('nodes/rename', { node: String(n.id), name }));
                    }}
                  >
                    <label for={`rename-${n.id}`} class="visually-hidden">
                      New name for {n.name}
                    </label>
                    <input id={`rename-${n.id}`} value={renaming.name} onInput={(e) => setRenaming({ id: n.id, name: e.currentTarget.value })} />
                    <button type="submit">Save</button>
                    <button type="button" class="secondary" onClick={() => setRenaming(null)}>
                      Cancel
                    </button>
                  </form>
                ) : (
                  <>
                    {n.pending && (
                      <button type="button" onClick={() => run(`${n.name} approved`, () => post('nodes/approve', { node: String(n.id) }))}>
                        Approve
                      </button>
                    )}
                    <button type="button" class="secondary" aria-label={`Rename ${n.name}`} onClick={() => setRenaming({ id: n.id, name: n.name })}>
                      Rename
                    </button>
                    <button
                      type="button"
                      class="secondary"
                      aria-label={`Expire the key of ${n.name}`}
                      onClick={() => run(`${n.name}'s key expired`, () => post('nodes/expire', { node: String(n.id) }))}
                    >
                      Expire
                    </button>
                    {deleting === n.id ? (
                      <button
                        type="button"
                        class="danger"
                        aria-label={`Confirm: delete ${n.name}`}
                        onClick={() => {
                          setDeleting(null);
                          void run(`${n.name} deleted`, () => post('nodes/delete', { node: String(n.id) }));
                        }}
                      >
                        Confirm delete
                      </button>
                    ) : (
                      <button type="button" class="danger" aria-label={`Delete ${n.name}`} onClick={() => setDeleting(n.id)}>
                        Delete
                      </button>
                    )}
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && rows.length === 0 && <p>{data.length === 0 ? 'No nodes yet: create an auth key and run meshctl up.' : 'No node matches the filter.'}</p>}
    </section>
  );
}
