// A recorded conversation played back as a provider: the offline demo's model. Everything else
// in a replayed task (loop, pod, proxy, audit) is the real thing; only the model's turns are not.
import type { ModelTurn, Provider } from '../types.js';

export function createReplayProvider(turns: ModelTurn[], chunk = 12): Provider {
  const queue = [...turns];
  return {
    name: 'replay',
    async turn(_req, onText) {
      const t = queue.shift();
      if (!t) return { ok: false, error: 'the recorded conversation has no more turns', retryable: false };
      if (t.ok) {
        // Streamed in small pieces, as a live model's text arrives.
        for (const b of t.content) {
          if (b.type !== 'text') continue;
          for (let i = 0; i < b.text.length; i += chunk) onText(b.text.slice(i, i + chunk));
        }
      }
      return t;
    },
  };
}
