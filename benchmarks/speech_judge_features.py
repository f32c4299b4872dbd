"""Which of the judges' features decoded speech gets wrong: digit and speaker accuracy with
one group of features at a time put back to the originals' values.

    python benchmarks/speech_judge_features.py RUN [--per-speaker 50] [--seed 0]
        [--temperature 1]

Runs ``evaluate_speech`` on the run's test split (the utterances, targets and seeds of
``vqvae evaluate RUN --per-speaker N``).  For reconstructions and conversions it prints the
judges' accuracy as measured, then with each group of ``spectral_features``
(``FEATURE_GROUPS``) replaced by the original utterance's, and how far each group is from
the originals on average, in units of the originals' deviation (bias, and root mean square).
A group whose replacement lifts the accuracy most is where the decoder misleads the judge.
The speaker of a conversion is its target, whose voice the originals do not have: only the
digit judge is asked about conversions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vqvae.eval.speech_eval import evaluate_speech
from vqvae.eval.speech_probes import FEATURE_GROUPS, utterance_features
from vqvae.train.speech_runs import load_for_evaluation


def accuracy(judge, feats: np.ndarray, labels: np.ndarray) -> float:
    said = judge.classes[judge.logits_of_features(feats).argmax(dim=1).numpy()]
    return float(np.mean(said == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--per-speaker", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    run = Path(args.run)
    model, train, test = load_for_evaluation(run)
    result = evaluate_speech(model, train, test, per_speaker=args.per_speaker, seed=args.seed,
                             temperature=args.temperature)
    if result.digit_judge is None:
        raise SystemExit(f"{run}: its data has no digit labels")
    rate = model.config.sample_rate
    own = np.array([int(test.speaker[u]) for u in result.utterances])
    digits = np.array([int(test.labels["digit"][u]) for u in result.utterances])
    original = utterance_features([test.waveform(u) for u in result.utterances], rate)
    decoded = {"reconstructions": utterance_features(result.reconstructions, rate),
               "conversions": utterance_features(result.conversions, rate)}
    width = original.shape[1] // len(FEATURE_GROUPS)
    scale = original.std(axis=0) + 1e-6
    print(f"{run}: {len(own)} test utterances, temperature {args.temperature:g}; digits of the "
          f"originals {accuracy(result.digit_judge, original, digits):.1%}")
    for kind, feats in decoded.items():
        judges = [("digit", result.digit_judge, digits)]
        if kind == "reconstructions":
            judges.append(("speaker", result.speaker_judge, own))
        head = "  ".join(f"{name + ' acc':>11s}" for name, _, _ in judges)
        print(f"\n{kind}: {'group put back':18s} {head}  {'bias/sd':>8s} {'rms/sd':>7s}")
        measured = "  ".join(f"{accuracy(j, feats, y):11.1%}" for _, j, y in judges)
        print(f"{'':{len(kind) + 1}s} {'(none)':18s} {measured}")
        for g, group in enumerate(FEATURE_GROUPS):
            cols = slice(g * width, (g + 1) * width)
            mended = feats.copy()
            mended[:, cols] = original[:, cols]
            accs = "  ".join(f"{accuracy(j, mended, y):11.1%}" for _, j, y in judges)
            gap = (feats[:, cols] - original[:, cols]) / scale[cols]
            print(f"{'':{len(kind) + 1}s} {group:18s} {accs}  {gap.mean():+8.2f} "
                  f"{np.sqrt((gap**2).mean()):7.2f}")


if __name__ == "__main__":
    main()
