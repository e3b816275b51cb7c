export function Message({ m }: { m: { kind: 'ok' | 'error'; text: string } | null }) {
  if (!m) return null;
  return (
    <p class={m.kind === 'error' ? 'error' : 'ok'} role={m.kind === 'error' ? 'alert' : 'status'}>
      {m.text}
    </p>
  );
}
