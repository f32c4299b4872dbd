"""Where speaker conversion misses: the speaker judge's verdicts on converted audio, by target.

    python benchmarks/speech_conversion_confusion.py RUN [--per-speaker 50] [--seed 0]

Runs ``evaluate_speech`` on the run's test split (the utterances, targets and seeds of
``vqvae evaluate RUN --per-speaker N``), then prints, per speaker, how often reconstructions are
judged their own speaker and conversions their target, and the matrix of targets (rows) by
the judge's verdicts (columns).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vqvae.eval.speech_eval import evaluate_speech
from vqvae.train.speech_runs import load_for_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--per-speaker", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = Path(args.run)
    model, train, test = load_for_evaluation(run)
    result = evaluate_speech(model, train, test, per_speaker=args.per_speaker, seed=args.seed)
    judge = result.speaker_judge
    own = np.array([int(test.speaker[u]) for u in result.utterances])
    targets = np.array(result.targets)
    said_recon = judge.predict(result.reconstructions)
    said_conv = judge.predict(result.conversions)
    names = model.config.speaker_names
    width = max(len(n) for n in names) + 2
    print(f"{run}: {len(own)} test utterances; converted judged the target "
          f"{(said_conv == targets).mean():.1%}, still the source {(said_conv == own).mean():.1%}")
    print(f"{'speaker':{width}s} {'recon own':>10s} {'conv target':>12s}")
    for s, name in enumerate(names):
        print(f"{name:{width}s} {(said_recon[own == s] == s).mean():10.1%} "
              f"{(said_conv[targets == s] == s).mean():12.1%}")
    print("targets (rows) by verdicts (columns):")
    print(" " * width + "".join(f"{n[:8]:>9s}" for n in names))
    for t, name in enumerate(names):
        row = [int(((targets == t) & (said_conv == p)).sum()) for p in range(len(names))]
        print(f"{name:{width}s}" + "".join(f"{v:9d}" for v in row))


if __name__ == "__main__":
    main()
