// The admin page: log in with an admin token, then Nodes, Keys, Routes, Policy
// and Relays, reloaded live when the server reports a change (EventSource).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { get, post, RequestFailed, setCsrf, type SessionInfo } from './api.js';
import { NodesPage } from './nodes.js';
import { KeysPage } from './keys.js';
import { RoutesPage } from './routes.js';
import { PolicyPage } from './policy.js';
import { RelaysPage } from './relays.js';

const PAGES = ['nodes', 'keys', 'routes', 'policy', 'relays'] as const;
type Page = (typeof PAGES)[number];
const TITLES: Record<Page, string> = { nodes: 'Nodes', keys: 'Auth keys', routes: 'Routes', policy: 'Policy', relays: 'Relays' };

const pageFromHash = (): Page => {
  const h = location.hash.replace(/^#\/?/, '');
  return (PAGES as readonly string[]).includes(h) ? (h as Page) : 'nodes';
};

function Login({ onDone }: { onDone: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const s = await post<SessionInfo>('login', { token });
      setCsrf(s.csrf);
      setToken('');
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="login">
      <h1>meshctl admin</h1>
      <form onSubmit={submit}>
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          required
        />
        <p class="hint">
          Create one on the control server with <code>meshctl control admin token create</code>.
        </p>
        <button type="submit">Log in</button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function App() {
  const [state, setState] = useState<'loading' | 'login' | 'in'>('loading');
  const [page, setPage] = useState<Page>(pageFromHash());
  const [tick, setTick] = useState(0);
  const [live, setLive] = useState(false);

  const check = async () => {
    try {
      const s = await get<SessionInfo>('session');
      setCsrf(s.csrf);
      setState('in');
    } catch (err) {
      if (err instanceof RequestFailed && err.status === 401) setState('login');
      else throw err;
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs once, on mount: `check` only sets state
  useEffect(() => {
    void check();
    const onHash = () => setPage(pageFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: one event stream per login; `check` only sets state
  useEffect(() => {
    if (state !== 'in') return;
    const es = new EventSource('/admin/api/events');
    es.addEventListener('changed', () => setTick((t) => t + 1));
    es.onopen = () => setLive(true);
    es.onerror = () => {
      setLive(false);
      // a stream refused for lack of a session: ask again whether we are logged in
      void check();
    };
    return () => es.close();
  }, [state]);

  if (state === 'loading')
    return (
      <main>
        <p>Loading…</p>
      </main>
    );
  if (state === 'login') return <Login onDone={() => setState('in')} />;
  const logout = async () => {
    await post('logout').catch(() => {});
    setCsrf(null);
    setState('login');
  };
  const onAuthError = (err: unknown) => {
    if (err instanceof RequestFailed && err.status === 401) setState('login');
  };
  return (
    <>
      <header class="top">
        <span class="brand">meshctl admin</span>
        <nav aria-label="Sections">
          <ul>
            {PAGES.map((p) => (
              <li key={p}>
                <a href={`#/${p}`} aria-current={p === page ? 'page' : undefined}>
                  {TITLES[p]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={live ? 'live on' : 'live'} role="status">
          {live ? 'Live' : 'Not live'}
        </span>
        <button type="button" class="secondary" onClick={logout}>
          Log out
        </button>
      </header>
      <main>
        <h1>{TITLES[page]}</h1>
        {page === 'nodes' && <NodesPage tick={tick} onAuthError={onAuthError} />}
        {page === 'keys' && <KeysPage tick={tick} onAuthError={onAuthError} />}
        {page === 'routes' && <RoutesPage tick={tick} onAuthError={onAuthError} />}
        {page === 'policy' && <PolicyPage onAuthError={onAuthError} />}
        {page === 'relays' && <RelaysPage tick={tick} onAuthError={onAuthError} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
