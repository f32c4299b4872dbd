"""How far frame-level spectra alone go on the phone probe: k-means on log-mel frames.

    python benchmarks/phone_baseline.py [--codes 512] [--hop 64] [--rate 8000]

A reference for the phone-discovery figures of the speech VQ-VAE (docs/BENCHMARKS.md §7):
no network and no training, only Lloyd's k-means (``vqvae.quantize.kmeans``, k-means++
seeding, fixed seed) on log-mel frames of the tts_phones training utterances, one frame per
``--hop`` samples centred where a code of that hop is centred.  Every utterance is then turned
into cluster indices and scored by the same probe as ``vqvae evaluate`` (each cluster mapped to
its most frequent phone on the even-numbered utterances, frame accuracy on the odd-numbered
ones; also over speech frames only).  Rows: the frame alone, with the utterance's mean
spectrum subtracted (removes some of the voice), and with 2 frames of context either side.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vqvae.audio import load_speech_corpus
from vqvae.audio.spectrogram import log_mel_spectrogram
from vqvae.eval.speech_eval import probe_codes
from vqvae.quantize import kmeans
from vqvae.quantize.search import nearest_code


def frames(wave: np.ndarray, rate: int, hop: int, n_mels: int) -> np.ndarray:
    """(T,) -> (ceil(T / hop), n_mels) log-mel (dB), frame j centred on sample j hop + hop / 2."""
    # 32 ms windows centred at hop / 2 + j hop
    spec = log_mel_spectrogram(wave[hop // 2 :], rate, n_mels=n_mels, hop=hop).T
    spec = np.maximum(spec, spec.max() - 80.0)  # an 80 dB floor below the loudest bin
    return spec[: -(-len(wave) // hop)]


def features(spec: np.ndarray, kind: str) -> np.ndarray:
    if kind in ("mean removed", "context"):
        spec = spec - spec.mean(axis=0)
    if kind == "context":
        padded = np.pad(spec, ((2, 2), (0, 0)), mode="edge")
        spec = np.concatenate([padded[i : i + len(spec)] for i in range(5)], axis=1)
    return spec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--codes", type=int, default=512, help="k-means clusters (K)")
    p.add_argument("--hop", type=int, default=64, help="samples per frame (the code hop)")
    p.add_argument("--rate", type=int, default=8000, help="sample rate (Hz)")
    p.add_argument("--mels", type=int, default=40)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--data", default=None, help="tts_phones.npz (default: shared data)")
    args = p.parse_args()
    corpus = load_speech_corpus("tts_phones", args.data, "all", sample_rate=args.rate)
    specs = [frames(corpus.waveform(u), args.rate, args.hop, args.mels)
             for u in range(len(corpus))]
    train = set(load_speech_corpus("tts_phones", args.data, "train",
                                   sample_rate=args.rate).names)
    in_train = [name in train for name in corpus.names]
    print(f"# tts_phones at {args.rate} Hz: {len(corpus)} utterances ({sum(in_train)} for "
          f"k-means), hop {args.hop} ({args.rate / args.hop:.1f} frames/s), K = {args.codes}, "
          f"{args.mels} mel bands, {args.iters} Lloyd iterations")
    print("| features | all frames (baseline) | speech frames (baseline) |")
    print("|---|---|---|")
    for kind in ("frame", "mean removed", "context"):
        feats = [torch.from_numpy(features(s, kind)).float() for s in specs]
        fit = torch.cat([f for f, t in zip(feats, in_train, strict=True) if t])
        mean, std = fit.mean(0), fit.std(0).clamp(min=1e-6)
        centres = kmeans((fit - mean) / std, args.codes, iters=args.iters, plus_plus=True,
                         generator=torch.Generator().manual_seed(0))
        codes = [nearest_code((f - mean) / std, centres).numpy() for f in feats]
        probe = probe_codes(codes, corpus, args.hop)
        print(f"| {kind} | {probe.accuracy:.1%} ({probe.baseline:.1%}) | "
              f"{probe.accuracy_speech:.1%} ({probe.baseline_speech:.1%}) |", flush=True)


if __name__ == "__main__":
    main()
