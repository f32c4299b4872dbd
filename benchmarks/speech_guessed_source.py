"""Speaker conversion when the input's speaker is not known to a ``frame_norm="speaker-mean"``
model: the source given by ``SpeechVQVAE.nearest_speaker`` against the truth.

    python benchmarks/speech_guessed_source.py RUN [--per-speaker 50] [--seed 0]

A speaker-mean encoder subtracts its input speaker's long-term spectrum, so it has to be told
whose voice it reads; ``vqvae convert`` falls back to the known voice whose long-term spectrum
is nearest the file's.  This runs ``evaluate_speech`` on the run's test split twice, once with
the true sources and once with the guessed ones (the same utterances, targets and seeds), and
prints both, with how often the guess names the true speaker.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path

import torch

from vqvae.eval.speech_eval import evaluate_speech
from vqvae.train.speech_runs import load_for_evaluation

KEYS = ("source_guess_acc", "speaker_acc_reconstruction", "speaker_acc_converted_to_target",
        "speaker_acc_converted_still_source", "digit_acc_reconstruction",
        "digit_acc_converted", "log_mel_distance_db", "stoi")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--per-speaker", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = Path(args.run)
    model, train, test = load_for_evaluation(run)
    if model.config.frame_norm != "speaker-mean":
        parser.error(f"{run}: frame_norm is {model.config.frame_norm!r}, not 'speaker-mean'")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"{run}, commit {commit}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    results = {}
    for guess in (False, True):
        start = time.perf_counter()
        results[guess] = evaluate_speech(model, train, test, per_speaker=args.per_speaker,
                                         seed=args.seed, guess_sources=guess).metrics
        print(f"  {'guessed' if guess else 'known'} sources: "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    print(f"{'':36s} {'known':>8s} {'guessed':>8s}")
    for key in KEYS:
        known, guessed = (results[g].get(key, float("nan")) for g in (False, True))
        print(f"{key:36s} {known:8.4f} {guessed:8.4f}")


if __name__ == "__main__":
    main()
