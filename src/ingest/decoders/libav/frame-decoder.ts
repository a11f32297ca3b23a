/**
 * The libav decoder's frame decoder: feeds a stretch's runs as the decode plan says
 * (`skip_frame` per packet), drains, keeps the frames chosen and has them converted.
 */
import type { CodecContext, Frame, Stream } from 'node-av';
import { IngestError } from '../../../errors.js';
import type { DecodePlan, DecodeRun, SeekMode } from '../../decode-plan.js';
import { EPS, seconds, type Av, type DecodeRecord, type LibavFrame, type TimeBase } from './av.js';
import { RgbConverter } from './converter.js';
import type { Held } from './demuxer.js';

/**
 * Which decoded frames one run keeps: those at the times the plan expects or, where packets
 * lack the timestamps to plan by, the first frame at or after each target by decoded time
 * (and the last frame decoded for targets past the last frame).
 */
export class FrameChooser {
  private readonly byDecodedTime: boolean;
  private readonly want: number[];
  /** Targets not served yet, ascending (by decoded time only). */
  private readonly pending: number[];
  /** A copy of the last frame decoded and not kept (by decoded time only). */
  private last: Frame | undefined;

  constructor(
    plan: DecodePlan,
    run: DecodeRun,
    stretchTargets: readonly number[],
    private readonly mode: SeekMode,
  ) {
    this.byDecodedTime = plan.byDecodedTime;
    this.want = plan.byDecodedTime ? [] : run.targets.map((i) => plan.expected[i]!);
    this.pending = run.targets.map((i) => stretchTargets[i]).sort((a, b) => a - b);
  }

  /** Whether to keep `frame`, decoded at `pts`. */
  take(pts: number | undefined, frame: Frame): boolean {
    // Keyframe mode feeds the chosen keyframes only: every frame is one of them.
    if (this.mode === 'keyframe') return pts !== undefined;
    if (!this.byDecodedTime) return pts !== undefined && this.want.some((w) => Math.abs(w - pts) < EPS);
    let take = false;
    while (this.pending.length > 0 && pts !== undefined && pts >= this.pending[0] - EPS) {
      this.pending.shift();
      take = true;
    }
    this.last?.free();
    this.last = take ? undefined : (frame.clone() ?? undefined);
    return take;
  }

  /** The frame that serves the targets still pending once the run is drained, if any. */
  leftover(): Frame | undefined {
    return this.byDecodedTime && this.pending.length > 0 ? this.last : undefined;
  }

  free(): void {
    this.last?.free();
    this.last = undefined;
  }
}

/** The video decoder: feeds a stretch's runs as the plan says and converts the frames chosen. */
export class FrameDecoder implements Disposable {
  /** The frames chosen, in the order they were decoded. */
  readonly frames: LibavFrame[] = [];
  /** The planner's `reach`: the packets a gap may span and still be decoded through. */
  readonly reach: number;
  private readonly tb: TimeBase;
  private readonly frame: Frame;
  private readonly rgb: RgbConverter;
  private skip: 'default' | 'noref' | 'nokey' = 'default';

  private constructor(
    private readonly av: Av,
    private readonly ctx: CodecContext,
    stream: Stream,
    private readonly record: DecodeRecord,
    private readonly check: () => void,
    private readonly resize: (raw: Buffer, width: number, height: number) => Promise<Buffer>,
  ) {
    this.tb = stream.timeBase;
    // TorchCodec's rule: decode through when the next keyframe is within the decoder's delay.
    this.reach = Math.max(0, ctx.hasBFrames + Math.max(1, ctx.threadCount) - 1);
    this.frame = new av.Frame();
    this.frame.alloc();
    this.rgb = new RgbConverter(av);
  }

  /** Opens `stream`'s decoder with `threads` threads. */
  static async open(
    av: Av,
    path: string,
    stream: Stream,
    record: DecodeRecord,
    check: () => void,
    threads: number,
    resize: FrameDecoder['resize'],
  ): Promise<FrameDecoder> {
    const codec = av.Codec.findDecoder(stream.codecpar.codecId);
    if (!codec)
      throw new IngestError(
        'UNSUPPORTED',
        path,
        `${path}: no decoder for ${av.avGetCodecName(stream.codecpar.codecId) ?? 'this codec'} in libav`,
      );
    const ctx = new av.CodecContext();
    ctx.allocContext3(codec);
    try {
      ctx.parametersToContext(stream.codecpar);
      ctx.pktTimebase = stream.timeBase;
      ctx.threadCount = threads;
      const opened = await ctx.open2(codec);
      if (opened < 0)
        throw new IngestError(
          'UNSUPPORTED',
          path,
          `${path}: libav cannot open the ${codec.name} decoder (${av.FFmpegError.strerror(opened)})`,
        );
    } catch (error) {
      ctx.freeContext();
      throw error;
    }
    return new FrameDecoder(av, ctx, stream, record, check, resize);
  }

  /** Feeds one run of `held` as its actions say, drains the decoder, and converts the frames `chooser` keeps. */
  async decodeRun(held: readonly Held[], run: DecodeRun, chooser: FrameChooser): Promise<void> {
    try {
      for (let k = run.first; k < run.end; k++) {
        const action = run.actions[k - run.first];
        const h = held[k];
        if (action === 'drop' || !h.packet) continue;
        this.check();
        await this.feed(h, action);
        await this.receive(chooser);
      }
      this.setSkip('default');
      await this.ctx.sendPacket(null); // drain
      await this.receive(chooser);
      const leftover = chooser.leftover();
      if (leftover) await this.convert(leftover, this.time(leftover) ?? 0);
    } finally {
      chooser.free();
      this.ctx.flushBuffers();
    }
  }

  private async feed(h: Held, action: 'target' | 'noref' | 'nokey'): Promise<void> {
    const { av, record } = this;
    this.setSkip(action === 'target' ? 'default' : action);
    if (action !== 'target') record.stats.packetsNoref++;
    else record.stats.packetsFed++;
    const ret = await this.ctx.sendPacket(h.packet);
    if (ret < 0 && ret !== av.AVERROR_EAGAIN)
      record.errors.push(
        `packet at ${(h.entry.pts ?? h.entry.dts ?? 0).toFixed(6)} s: ${av.FFmpegError.strerror(ret)}`,
      );
  }

  /** Receives every frame the decoder has ready; `chooser` decides which to keep. */
  private async receive(chooser: FrameChooser): Promise<void> {
    const { av, frame, record } = this;
    for (;;) {
      const ret = await this.ctx.receiveFrame(frame);
      if (ret === av.AVERROR_EAGAIN || ret === av.AVERROR_EOF) return;
      if (ret < 0) {
        record.errors.push(`decode: ${av.FFmpegError.strerror(ret)}`);
        return;
      }
      record.stats.framesDecoded++;
      if (frame.decodeErrorFlags !== 0)
        record.errors.push(
          `frame at ${this.seconds(frame.bestEffortTimestamp)?.toFixed(6)} s decoded with errors`,
        );
      const pts = this.time(frame);
      if (chooser.take(pts, frame)) await this.convert(frame, pts ?? 0);
      frame.unref();
    }
  }

  /** Converts a decoded frame to rgb24 at its coded size, then rotates and resizes it. */
  private async convert(decoded: Frame, pts: number): Promise<void> {
    const raw = await this.rgb.convert(decoded, this.check);
    const image = this.resize(raw, decoded.width, decoded.height);
    image.catch(() => undefined); // awaited by the caller
    this.frames.push({ pts, image });
    this.record.stats.framesConverted++;
  }

  private setSkip(value: 'default' | 'noref' | 'nokey'): void {
    if (value === this.skip) return;
    this.ctx.setOption('skip_frame', value);
    this.skip = value;
  }

  /** A decoded frame's time: its best-effort timestamp, else its pts. */
  private time(decoded: Frame): number | undefined {
    return this.seconds(decoded.bestEffortTimestamp) ?? this.seconds(decoded.pts);
  }

  private seconds(ts: bigint): number | undefined {
    return seconds(ts, this.tb, this.av.AV_NOPTS_VALUE);
  }

  [Symbol.dispose](): void {
    this.frame.free();
    this.rgb.free();
    this.ctx.freeContext();
  }
}
