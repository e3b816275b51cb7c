// Progress of long work: an ink spinner with the current step on a terminal,
// plain lines on stderr otherwise (logs and scripts stay readable). Ink and
// React load only on a terminal, so piped commands start fast.
import { plainOutput } from '../../util/knobs.js';

export interface Progress {
  step(message: string): void;
  /** stops the display; the final result is printed by the caller */
  end(): Promise<void>;
}

const SPINNER_FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const SPINNER_INTERVAL_MS = 80;

function plain(): Progress {
  return {
    step: (m) => void process.stderr.write(`${m}\n`),
    end: async () => {},
  };
}

export async function startProgress(first: string): Promise<Progress> {
  if (!process.stderr.isTTY || plainOutput()) {
    const p = plain();
    p.step(first);
    return p;
  }
  const React = (await import('react')).default;
  const { render, Text } = await import('ink');
  let setMessage: (m: string) => void = () => {};
  function Spinner(): React.ReactElement {
    const [frame, setFrame] = React.useState(0);
    const [msg, setMsg] = React.useState(first);
    setMessage = setMsg;
    React.useEffect(() => {
      const t = setInterval(() => setFrame((f) => (f + 1) % SPINNER_FRAMES.length), SPINNER_INTERVAL_MS);
      return () => clearInterval(t);
    }, []);
    return React.createElement(Text, null, React.createElement(Text, { color: 'cyan' }, SPINNER_FRAMES[frame]), ` ${msg}`);
  }
  const app = render(React.createElement(Spinner), { stdout: process.stderr, patchConsole: false });
  return {
    step: (m) => setMessage(m),
    end: async () => {
      app.clear();
      app.unmount();
      await app.waitUntilExit().catch(() => {});
    },
  };
}
