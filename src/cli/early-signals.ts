/**
 * Imported first by main.ts, so that it runs before the other imports are read (cac, the
 * commands: a few hundred ms on a busy machine): from here on a Ctrl-C exits 130, however early.
 */
import { exitOnEarlySignals } from './interrupt.js';

exitOnEarlySignals();
