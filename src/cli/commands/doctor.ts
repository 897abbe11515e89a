// `clawpod doctor`: which guards this host can enforce, per backend, and the fix for each gap.
import type { Context } from '../../core/context.js';
import { parseCommand, type Command } from '../args.js';
import { print, printJson } from '../output.js';

export const DOCTOR: Command = {
  name: 'doctor',
  usage: '[--backend NAME]',
  summary: 'Check what this host can enforce: every guard a pod needs, active, degraded or missing, with the fix.',
  options: {
    backend: { type: 'string', arg: 'NAME', desc: 'the backend to check (default: bwrap)' },
    json: { type: 'boolean', desc: 'the guards as JSON on stdout: {backend, ok, guards: [{name, state, detail, fix, cap}]}' },
  },
  exits: [
    ['0', 'every guard a pod needs is active or can be degraded with --allow-degraded'],
    ['1', 'a guard pods cannot start without is missing'],
  ],
  examples: ['clawpod doctor', 'clawpod doctor --json | jq \'.guards[] | select(.state != "active")\''],
};

export async function cmdDoctor(ctx: Context, args: string[]): Promise<number> {
  const { values } = parseCommand(DOCTOR, args);
  const name = (values.backend as string | undefined) ?? 'bwrap';
  const guards = ctx.backend(name).probe();
  const mark = { active: 'active  ', degraded: 'degraded', missing: 'MISSING ' };
  const lines = [`clawpod doctor: ${name} backend on this host`, ''];
  for (const g of guards) {
    lines.push(`  ${mark[g.state]}  ${g.name.padEnd(18)} ${g.detail}`);
    if (g.fix) lines.push(`  ${' '.repeat(10)}${' '.repeat(19)}fix: ${g.fix}`);
  }
  const refuse = guards.filter((g) => g.state === 'missing');
  const ok = !refuse.some((g) => !g.cap);
  if (values.json) {
    printJson({ backend: name, ok, guards: guards.map((g) => ({ name: g.name, state: g.state, detail: g.detail, fix: g.fix ?? null, cap: Boolean(g.cap) })) });
    return ok ? 0 : 1;
  }
  lines.push(
    '',
    refuse.length
      ? `${refuse.length} guard(s) missing: pods refuse to start${refuse.every((g) => g.cap) ? ' unless --allow-degraded' : ''}`
      : 'all guards a pod needs are active',
  );
  print(lines.join('\n'));
  return ok ? 0 : 1;
}
