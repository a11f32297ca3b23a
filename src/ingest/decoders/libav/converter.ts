/** The libav decoder's converter: swscale to rgb24, and the copy out of the frame in slices. */
import type * as NodeAv from 'node-av';
import type { Frame, SoftwareScaleContext } from 'node-av';
import type { Av } from './av.js';

/**
 * A converted frame larger than this (beyond 4K) is copied out in slices this large, the
 * event loop turning between them; one this size is copied in one go (tens of ms).
 */
const COPY_SLICE_BYTES = 32 * 2 ** 20;

/** swscale to rgb24 at the coded size; its context is made again when the size or pixel format changes. */
export class RgbConverter {
  private readonly rgb: Frame;
  private sws: SoftwareScaleContext | undefined;
  private key = '';

  constructor(private readonly av: Av) {
    this.rgb = new av.Frame();
    this.rgb.alloc();
  }

  /**
   * `decoded` as packed rgb24. swscale runs on libuv's pool; the copy out of the frame runs
   * here, on the main thread, so a large frame is copied in slices with a turn of the event
   * loop between them (`check` then throws on an abort): one copy of a 12000x12000 frame
   * (432 MB) held the loop for 0.3-0.7 s, and Ctrl-C for over 2 s.
   */
  async convert(decoded: Frame, check: () => void): Promise<Buffer> {
    const key = `${decoded.width}x${decoded.height}/${decoded.format}`;
    if (key !== this.key) this.remake(decoded, key);
    await this.sws!.scaleFrame(this.rgb, decoded);
    const { width, height } = decoded;
    const rowBytes = width * 3;
    if (rowBytes * height <= COPY_SLICE_BYTES) return this.rgb.toBuffer();
    const out = Buffer.allocUnsafeSlow(rowBytes * height); // [H, W, 3]
    const plane = this.rgb.data![0]; // a view of the frame's memory, [H, linesize]: valid while this.rgb is
    const stride = this.rgb.linesize[0];
    const rows = Math.max(1, Math.floor(COPY_SLICE_BYTES / rowBytes));
    for (let y = 0; y < height; y += rows) {
      if (y > 0) {
        await new Promise(setImmediate);
        check();
      }
      const end = Math.min(height, y + rows);
      if (stride === rowBytes) plane.copy(out, y * rowBytes, y * stride, end * stride);
      else for (let r = y; r < end; r++) plane.copy(out, r * rowBytes, r * stride, r * stride + rowBytes);
    }
    return out;
  }

  private remake(decoded: Frame, key: string): void {
    const { av, rgb } = this;
    this.sws?.freeContext();
    this.sws = new av.SoftwareScaleContext();
    // The ffmpeg CLI's filter graphs convert with bicubic (its default sws_flags). The flags
    // pick how chroma is upsampled where no unscaled fast path exists (10-bit and other
    // high-depth formats): bilinear left 10-bit frames up to 41/255 from the CLI's.
    this.sws.getContext(
      decoded.width,
      decoded.height,
      decoded.format as NodeAv.AVPixelFormat,
      decoded.width,
      decoded.height,
      av.AV_PIX_FMT_RGB24,
      av.SWS_BICUBIC,
    );
    rgb.unref();
    rgb.format = av.AV_PIX_FMT_RGB24;
    rgb.width = decoded.width;
    rgb.height = decoded.height;
    rgb.allocBuffer();
    this.key = key;
  }

  free(): void {
    this.rgb.free();
    this.sws?.freeContext();
  }
}
