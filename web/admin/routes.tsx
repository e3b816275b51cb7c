import { post, type RouteRow } from './api.js';
import { Message } from './message.js';
import { useAction, useData, type PageProps } from './use-data.js';

export function RoutesPage({ tick, onAuthError }: PageProps) {
  const { data, error, reload } = useData<RouteRow[]>('routes', tick, onAuthError);
  const { message, run } = useAction(reload, onAuthError);
  const act = (r: RouteRow, what: 'approve' | 'reject') =>
    run(`${r.prefix} of ${r.node}: ${what === 'approve' ? 'approved' : 'rejected'}`, () =>
      post(`routes/${what}`, { node: String(r.nodeId), prefix: r.kind === 'exit' ? 'exit' : r.prefix }),
    );
  return (
    <section aria-label="Subnet routes and exit nodes">
      <Message m={message} />
      {error && <p class="error">{error}</p>}
      {data && data.length === 0 && <p>No node advertises a route or exit node.</p>}
      <table class="stack">
        <thead>
          <tr>
            <th scope="col">Node</th>
            <th scope="col">Kind</th>
            <th scope="col">Prefix</th>
            <th scope="col">State</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {(data ?? []).map((r) => (
            <tr key={`${r.nodeId} ${r.prefix}`}>
              <td data-label="Node">
                <div>
                  <span class={r.online ? 'dot on' : 'dot'} aria-hidden="true" />
                  {r.node} <span class="state">{r.online ? 'online' : 'offline'}</span>
                </div>
              </td>
              <td data-label="Kind">{r.kind === 'exit' ? 'exit node' : 'subnet route'}</td>
              <td data-label="Prefix">
                <code>{r.prefix}</code>
              </td>
              <td data-label="State">
                {[r.advertised ? 'advertised' : 'not advertised', r.approved ? 'approved' : 'not approved', ...(r.primary ? ['primary'] : [])].join(', ')}
              </td>
              <td data-label="Actions" class="actions">
                {!r.approved && (
                  <button type="button" aria-label={`Approve ${r.prefix} of ${r.node}`} onClick={() => act(r, 'approve')}>
                    Approve
                  </button>
                )}
                {r.approved && (
                  <button type="button" class="danger" aria-label={`Reject ${r.prefix} of ${r.node}`} onClick={() => act(r, 'reject')}>
                    Reject
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
