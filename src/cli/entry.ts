// Process entry for bin/clawpod: kept apart from main.ts so tests can import the CLI's parts.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
