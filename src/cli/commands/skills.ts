// `clawpod skills list`: the Agent Skills a task would load.
import path from 'node:path';
import type { Context } from '../../core/context.js';
import { UserError } from '../../core/errors.js';
import { resolveRules, resolveWorkspace } from '../../core/exec.js';
import { HelpRequest, helpText, parseCommand, type Command } from '../args.js';
import { print, printJson } from '../output.js';

export const SKILLS: Command = {
  name: 'skills list',
  usage: '[--policy FILE] [--workspace DIR]',
  summary: "The skills a task would load: ~/.clawpod/skills and the workspace's .clawpod/skills.",
  options: {
    policy: { type: 'string', short: 'p', arg: 'FILE', desc: 'policy file (its tools rules decide which skills load)' },
    workspace: { type: 'string', short: 'w', arg: 'DIR', desc: 'the project (default: the current directory)' },
    json: { type: 'boolean', desc: 'print {skills, problems} as JSON on stdout' },
  },
  examples: ['clawpod skills list', 'clawpod skills list -w ~/src/app', "clawpod skills list --json | jq -r '.skills[].name'"],
};

export async function cmdSkills(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '-h' || sub === '--help') throw new HelpRequest(helpText(SKILLS));
  if (sub !== 'list' && sub !== undefined) throw new UserError(`unknown skills command "${sub}" (use list)`);
  const { values, positionals } = parseCommand(SKILLS, rest);
  if (positionals.length) throw new UserError(`unexpected "${positionals[0]}" (see clawpod skills list --help)`);
  const { discoverSkills, skillsJson, skillsTable } = await import('../../agent/skills.js');
  const rules = await resolveRules(ctx, values.policy as string | undefined);
  const workspace = resolveWorkspace(ctx, rules, values.workspace as string | undefined, process.cwd());
  const found = discoverSkills({ userDir: path.join(ctx.clawpodHome, 'skills'), workspace, rules });
  if (values.json) {
    printJson(skillsJson(found.skills, found.problems));
    return 0;
  }
  print(skillsTable(found.skills, found.problems) || 'no skills (add folders with a SKILL.md to ~/.clawpod/skills or .clawpod/skills)');
  return 0;
}
