import type { RelayRow } from './api.js';
import { useData, type PageProps } from './use-data.js';

export function RelaysPage({ tick, onAuthError }: PageProps) {
  const { data, error } = useData<{ regions: RelayRow[] }>('relays', tick, onAuthError);
  return (
    <section aria-label="Relay regions">
      {error && <p class="error">{error}</p>}
      {data && data.regions.length === 0 && <p>No relay regions: start the server with --relay CODE=URL or relays in --config.</p>}
      <table class="stack">
        <thead>
          <tr>
            <th scope="col">Region</th>
            <th scope="col">URL</th>
            <th scope="col">STUN port</th>
            <th scope="col">Health</th>
          </tr>
        </thead>
        <tbody>
          {(data?.regions ?? []).map((r) => (
            <tr key={`${r.code} ${r.url}`}>
              <td data-label="Region">{r.code}</td>
              <td data-label="URL">
                <code>{r.url}</code>
              </td>
              <td data-label="STUN port">{r.stunPort}</td>
              <td data-label="Health">
                <div>
                  <span class={r.reachable ? 'dot on' : 'dot'} aria-hidden="true" />
                  {r.reachable ? 'answered control' : 'not reached yet'}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
