/** node-av, loaded once and only when the libav decoder is asked for, and what the libav decoder's parts share. */
import type * as NodeAv from 'node-av';
import { debug } from '../../../log.js';

export type Av = typeof NodeAv;

let loading: Promise<Av> | undefined;

/**
 * Imports node-av once; rejects when it is not installed or its binary does not load, or
 * when `FRAMEWISE_LIBAV` is `off`, `0`, `false` or `no` (any case) it is kept from loading
 * (then `auto` decodes with the CLI).
 */
export function loadLibav(): Promise<Av> {
  const off = ['off', '0', 'false', 'no'].includes(process.env.FRAMEWISE_LIBAV?.trim().toLowerCase() ?? '');
  if (off) return Promise.reject(new Error('turned off by FRAMEWISE_LIBAV'));
  if (!loading) {
    loading = import('node-av').then((av) => {
      // Library code never prints: FFmpeg's own log goes to debuglog.
      av.Log.setLevel(av.AV_LOG_ERROR);
      av.Log.setCallback((_level, message) => debug('libav: %s', message.trim()));
      return av;
    });
    loading.catch(() => undefined);
  }
  return loading;
}

/** What one decode did, for benchmarks and debugging. */
export interface DecodeStats {
  packetsRead: number;
  /** Packets fed in full / fed with skip_frame=noref or nokey. */
  packetsFed: number;
  packetsNoref: number;
  framesDecoded: number;
  framesConverted: number;
  seeks: number;
}

/** What a decode records as it goes: its counts and its decode errors (the first 20 are returned). */
export interface DecodeRecord {
  stats: DecodeStats;
  errors: string[];
}

/** A decoded frame chosen for a target: its time, and its picture at the display size, resized. */
export interface LibavFrame {
  pts: number;
  image: Promise<Buffer>;
}

export type TimeBase = { num: number; den: number };

/** Synchronous reading yields to the event loop after this long. */
export const YIELD_AFTER_MS = 10;
export const EPS = 1e-6;

export function seconds(ts: bigint, tb: { num: number; den: number }, nopts: bigint): number | undefined {
  return ts === nopts || tb.den === 0 ? undefined : (Number(ts) * tb.num) / tb.den;
}
