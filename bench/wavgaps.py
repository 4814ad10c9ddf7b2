#!/usr/bin/env python3
"""Gaps in call recordings, as DESIGN.md defines them (Python 3 standard library only).

    bench/wavgaps.py [--skip-ms 200] [--threshold 0.05] [--details N] PATH...

PATH: WAV files, or directories searched for *.wav. For use on recordings of calls in
which both parties play a steady tone (bench/calls.sh with RECORD=1).

A gap is a 20 ms stretch of a recording, away from its ends, whose energy falls below 5 %
of the file's median 20 ms energy. Each channel is checked on its own (stereo: the caller
left, the callee right), and:
  - the median is that of the channel's non-overlapping 20 ms windows over the whole file;
  - every 20 ms stretch is tried, in steps of 0.5 ms (so a single lost 20 ms packet,
    which leaves exactly 20 ms of silence wherever it starts, is always found: the best
    stretch holds at most a quarter of a millisecond of tone);
  - stretches that start within --skip-ms of the file's start or end within --skip-ms of
    its end are left out (the two phones start and stop their tones a few ms apart);
  - overlapping or touching stretches below the threshold count as one gap; gap_ms is the
    silence they cover together;
  - a channel with no energy at all (median 0) is reported as silent, and counts as a
    file with gaps.

Prints one line on stdout:
    wav_files=N files_with_gaps=N gaps=N gap_ms=N silent_channels=N recorded_s=S
    unreadable=N shortest_s=S longest_s=S
and, on stderr, the first --details files with gaps (path, channel, where). Exit status 0
whatever it finds (1 on bad arguments).
"""
import argparse
import array
import itertools
import operator
import os
import statistics
import sys
import wave


def wav_paths(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                for f in sorted(files):
                    if f.lower().endswith(".wav"):
                        yield os.path.join(root, f)
        else:
            yield p


def read_wav(path):
    """(rate, channels, samples as array('h'), interleaved)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{w.getsampwidth() * 8}-bit samples (16 expected)")
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        data = w.readframes(n)
    samples = array.array("h")
    samples.frombytes(data[: len(data) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return rate, ch, samples


def channel_gaps(x, rate, skip_ms, threshold):
    """Gaps of one channel: (median, [(start_ms, length_ms)]); median 0 means silent."""
    win = rate // 50  # 20 ms
    hop = max(1, rate // 2000)  # 0.5 ms
    n = len(x)
    if n < win:
        return None, []
    # Prefix sums of the squares: the energy of [i, i + win) is p[i + win] - p[i].
    p = [0]
    p.extend(itertools.accumulate(map(operator.mul, x, x)))
    median = statistics.median(p[i + win] - p[i] for i in range(0, n - win + 1, win))
    if median <= 0:
        return 0, []
    limit = threshold * median
    skip = rate * skip_ms // 1000
    first, last = skip, n - skip - win  # stretch starts checked
    low = [i for i in range(first, last + 1, hop) if p[i + win] - p[i] < limit]
    gaps = []
    for i in low:
        if gaps and i <= gaps[-1][1]:  # overlaps or touches the previous stretch
            gaps[-1][1] = i + win
        else:
            gaps.append([i, i + win])
    return median, [(a * 1000 / rate, (b - a) * 1000 / rate) for a, b in gaps]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--skip-ms", type=int, default=200)
    ap.add_argument("--threshold", type=float, default=0.05)
    ap.add_argument("--details", type=int, default=5, help="files with gaps to describe on stderr")
    a = ap.parse_args()

    files = with_gaps = gaps = silent = unreadable = 0
    gap_ms = recorded = 0.0
    lengths = []
    described = 0
    for path in wav_paths(a.paths):
        files += 1
        try:
            rate, nch, samples = read_wav(path)
        except (OSError, EOFError, ValueError, wave.Error) as e:
            unreadable += 1
            print(f"wavgaps: {path}: unreadable: {e}", file=sys.stderr)
            continue
        frames = len(samples) // nch
        seconds = frames / rate
        recorded += seconds
        lengths.append(seconds)
        found = []
        for ch in range(nch):
            median, g = channel_gaps(samples[ch::nch], rate, a.skip_ms, a.threshold)
            if median == 0:
                silent += 1
                found.append((ch, "silent channel"))
            elif g:
                gaps += len(g)
                gap_ms += sum(length for _, length in g)
                shown = ", ".join(f"{s:.1f} ms +{length:.1f}" for s, length in g[:8])
                more = f" (+{len(g) - 8} more)" if len(g) > 8 else ""
                found.append((ch, f"{len(g)} gap(s): {shown}{more}"))
        if found:
            with_gaps += 1
            if described < a.details:
                described += 1
                for ch, what in found:
                    print(f"wavgaps: {path} ({seconds:.2f} s, {rate} Hz) channel {ch}: {what}",
                          file=sys.stderr)
    print(f"wav_files={files} files_with_gaps={with_gaps} gaps={gaps} gap_ms={gap_ms:.1f} "
          f"silent_channels={silent} recorded_s={recorded:.1f} unreadable={unreadable} "
          f"shortest_s={min(lengths, default=0):.2f} longest_s={max(lengths, default=0):.2f}")


if __name__ == "__main__":
    main()
