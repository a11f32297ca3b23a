#!/bin/bash
# Makes the benchmark set used for speed comparisons: 10 s, 30 fps, H.264 clips from
# ffmpeg's synthetic sources, 8 at 640x360 (light to heavy bitrate) and 2 at 1280x720.
# Usage: make_bench_videos.sh OUT_DIR [FFMPEG=ffmpeg]
# (framewise's copy of ../shared/reference/make_bench_videos.sh. One change: an ffmpeg
# without the `gradients` source, such as the 4.1-era static build in @ffmpeg-installer,
# makes c5 from a colour field through `vignette` and a turning `hue` instead: a smooth,
# slowly changing picture of the same kind.)
set -euo pipefail
OUT=${1:?usage: make_bench_videos.sh OUT_DIR [FFMPEG]}
FF=${2:-ffmpeg}
mkdir -p "$OUT"
ENC="-c:v libx264 -pix_fmt yuv420p -preset medium -crf 23 -an"
S=640x360; R=30; D=10
run() { "$FF" -y -v error "$@"; }
run -f lavfi -i testsrc2=s=$S:r=$R:d=$D                                  $ENC "$OUT/c1_testsrc2.mp4"
run -f lavfi -i mandelbrot=s=$S:r=$R -t $D                               $ENC "$OUT/c2_mandelbrot.mp4"
run -f lavfi -i life=s=$S:r=$R:mold=10:ratio=0.1:death_color=#C83232:life_color=#00ff00 -t $D $ENC "$OUT/c3_life.mp4"
run -f lavfi -i testsrc2=s=$S:r=$R:d=$D -vf noise=alls=20:allf=t          $ENC "$OUT/c4_testsrc2_noise.mp4"
if "$FF" -hide_banner -filters 2>/dev/null | grep -q " gradients "; then
  run -f lavfi -i gradients=s=$S:r=$R:speed=0.05 -t $D                   $ENC "$OUT/c5_gradients.mp4"
else
  run -f lavfi -i color=c=0x3366cc:s=$S:r=$R:d=$D -vf "vignette=PI/4,hue=h=t*36:s=1.5" $ENC "$OUT/c5_gradients.mp4"
fi
run -f lavfi -i cellauto=s=$S:r=$R:rule=110 -t $D                        $ENC "$OUT/c6_cellauto.mp4"
run -f lavfi -i testsrc=s=$S:r=$R:d=$D -vf "rotate=a=t*0.5:c=black,hue=h=t*36" $ENC "$OUT/c7_testsrc_rot.mp4"
run -f lavfi -i mandelbrot=s=$S:r=$R -t $D -vf "noise=alls=12:allf=t,rotate=a=t*0.2" $ENC "$OUT/c8_mandel_noise.mp4"
run -f lavfi -i testsrc2=s=1280x720:r=$R:d=$D -vf noise=alls=10:allf=t    $ENC "$OUT/hd_testsrc2_720p.mp4"
run -f lavfi -i testsrc2=s=1280x720:r=$R:d=$D                            $ENC "$OUT/hd_testsrc2_720p_clean.mp4"
