// Loads a list from the API, again whenever `tick` moves (a live change event) or after an action.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { get } from './api.js';

export interface PageProps {
  tick: number;
  onAuthError: (err: unknown) => void;
}

export function useData<T>(path: string, tick: number, onAuthError: (err: unknown) => void) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the loader depends on the path only; onAuthError is the App's and stable in effect
  const reload = useCallback(async () => {
    try {
      setData(await get<T>(path));
      setError(null);
    } catch (err) {
      onAuthError(err);
      setError((err as Error).message);
    }
  }, [path]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `tick` is the live change event: each one reloads
  useEffect(() => {
    void reload();
  }, [tick, reload]);
  return { data, error, reload };
}

/** Runs an action, then reloads; its error is shown in the page's message area. */
export function useAction(reload: () => Promise<void>, onAuthError: (err: unknown) => void) {
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const run = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      setMessage({ kind: 'ok', text: what });
    } catch (err) {
      onAuthError(err);
      setMessage({ kind: 'error', text: (err as Error).message });
    }
    await reload();
  };
  return { message, run };
}

export const when = (iso: string | null): string => (iso === null ? '—' : new Date(iso).toLocaleString());
