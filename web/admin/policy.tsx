import { useEffect, useRef, useState } from 'preact/hooks';
import { get, post, RequestFailed, type PolicyProblem } from './api.js';
import { Message } from './message.js';

type Check = { ok: true; acls: number; tests: number } | { ok: false; errors: PolicyProblem[] };

/** The offset of line:col (both from 1) in `text`, to put the caret there. */
function offsetOf(text: string, line: number, col: number): number {
  let at = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return text.length;
    at = nl + 1;
  }
  return Math.min(text.length, at + col - 1);
}

export function PolicyPage({ onAuthError }: { onAuthError: (err: unknown) => void }) {
  const [text, setText] = useState('');
  const [setAt, setSetAt] = useState<string | null>(null);
  const [problems, setProblems] = useState<PolicyProblem[]>([]);
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  // set once the admin types: a load that answers later must not overwrite the edit
  const edited = useRef(false);
  const load = async () => {
    try {
      const p = await get<{ text: string | null; setAt: string | null }>('policy');
      if (!edited.current) setText(p.text ?? '{\n  "acls": [\n    { "action": "accept", "src": ["*"], "dst": ["*:*"] }\n  ]\n}\n');
      setSetAt(p.setAt);
    } catch (err) {
      onAuthError(err);
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: the policy is loaded once, on mount; a reload would overwrite the text being edited
  useEffect(() => {
    void load();
  }, []);
  const check = async () => {
    setMessage(null);
    try {
      const r = await post<Check>('policy/check', { text });
      if (r.ok) {
        setProblems([]);
        setMessage({ kind: 'ok', text: `The policy is valid: ${r.acls} rule(s), ${r.tests} test(s) pass.` });
      } else setProblems(r.errors);
    } catch (err) {
      onAuthError(err);
      setMessage({ kind: 'error', text: (err as Error).message });
    }
  };
  const apply = async () => {
    setMessage(null);
    try {
      const r = await post<{ acls: number; tests: number }>('policy', { text });
      setProblems([]);
      setMessage({ kind: 'ok', text: `Applied: ${r.acls} rule(s); nodes get new maps now.` });
      edited.current = false;
      await load();
    } catch (err) {
      onAuthError(err);
      if (err instanceof RequestFailed && err.body.problems) setProblems(err.body.problems);
      else setMessage({ kind: 'error', text: (err as Error).message });
    }
  };
  const jump = (p: PolicyProblem) => {
    const el = area.current;
    if (!el || p.line === null) return;
    const at = offsetOf(text, p.line, p.col ?? 1);
    el.focus();
    el.setSelectionRange(at, at);
  };
  return (
    <section aria-label="Access policy">
      <p>{setAt ? `Set ${new Date(setAt).toLocaleString()}.` : 'No policy is set: every node may reach every other.'}</p>
      <label for="policy-text">Policy (HuJSON)</label>
      <textarea
        id="policy-text"
        ref={area}
        spellcheck={false}
        rows={18}
        value={text}
        onInput={(e) => {
          edited.current = true;
          setText(e.currentTarget.value);
        }}
      />
      <div class="buttons">
        <button type="button" class="secondary" onClick={check}>
          Check
        </button>
        <button type="button" onClick={apply}>
          Apply
        </button>
      </div>
      <Message m={message} />
      {problems.length > 0 && (
        <div role="alert">
          <h2>Problems</h2>
          <ul class="problems">
            {problems.map((p) => (
              <li key={`${p.line}:${p.col}:${p.message}`}>
                {p.line !== null ? (
                  <button type="button" class="link" onClick={() => jump(p)}>
                    line {p.line}:{p.col}
                  </button>
                ) : null}{' '}
                <span class="problem">{p.message}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
