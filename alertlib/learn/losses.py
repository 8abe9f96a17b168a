"""Losses for galaxy pre-training on volunteer votes: the Dirichlet-multinomial over a decision tree.

Galaxy Zoo labels are vote counts, one per answer of each question of the decision tree
(:func:`alertlib.io.schema.load_schema`). For every question the network predicts Dirichlet
concentrations ``alpha = 1 + 100 * sigmoid(logit)``, one per answer; the loss is the negative
log-likelihood of the observed counts under the Dirichlet-multinomial with those concentrations,
summed over questions. A question nobody was asked (zero votes) has likelihood 1 and contributes
nothing, so the tree's branching needs no special case.
"""

from __future__ import annotations

import torch

from alertlib.io.schema import Schema, load_schema

CONCENTRATION_SCALE = 100.0


def concentrations(logits: torch.Tensor) -> torch.Tensor:
    """Dirichlet concentrations in (1, 101) from unbounded network outputs."""
    return 1.0 + CONCENTRATION_SCALE * torch.sigmoid(logits.float())


def dirichlet_multinomial_nll(counts: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``counts`` (N, K) under Dirichlet-multinomial(``alpha`` (N, K)).

    log p = log N! - sum log k_i! + log Gamma(A) - log Gamma(N + A) + sum [log Gamma(k_i + a_i) - log Gamma(a_i)],
    with N = sum k_i and A = sum a_i. Rows with N = 0 give exactly 0.
    """
    counts = counts.float()
    total = counts.sum(dim=-1)
    alpha_total = alpha.sum(dim=-1)
    log_p = (
        torch.lgamma(total + 1.0)
        - torch.lgamma(counts + 1.0).sum(dim=-1)
        + torch.lgamma(alpha_total)
        - torch.lgamma(total + alpha_total)
        + (torch.lgamma(counts + alpha) - torch.lgamma(alpha)).sum(dim=-1)
    )
    # Exactly zero for unasked questions (the formula gives 0 up to rounding).
    return torch.where(total > 0, -log_p, torch.zeros_like(log_p))


class DirichletMultinomialLoss(torch.nn.Module):
    """Sum over the decision tree's questions of the Dirichlet-multinomial NLL, averaged over galaxies.

    Parameters
    ----------
    schema:
        The decision tree (default: GZ DECaLS DR5). Network outputs and vote counts are both ordered
        as ``schema.answer_columns``.
    """

    def __init__(self, schema: Schema | str = "gz_decals_dr5"):
        super().__init__()
        self.schema = load_schema(schema) if isinstance(schema, str) else schema
        self.question_slices = self.schema.question_slices

    @property
    def num_outputs(self) -> int:
        return len(self.schema.answer_columns)

    def per_question(self, logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """NLL per galaxy and question, shape (N, number of questions)."""
        if logits.shape != counts.shape or logits.shape[-1] != self.num_outputs:
            raise ValueError(
                f"logits {tuple(logits.shape)} and vote counts {tuple(counts.shape)} must both be "
                f"(N, {self.num_outputs}) for schema {self.schema.name}"
            )
        alpha = concentrations(logits)
        return torch.stack(
            [dirichlet_multinomial_nll(counts[:, part], alpha[:, part]) for part in self.question_slices], dim=1
        )

    def forward(self, logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return self.per_question(logits, counts).sum(dim=1).mean()


def expected_vote_fractions(logits: torch.Tensor, schema: Schema | str = "gz_decals_dr5") -> torch.Tensor:
    """Predicted vote fractions per answer (the Dirichlet means, question by question)."""
    schema = load_schema(schema) if isinstance(schema, str) else schema
    alpha = concentrations(logits)
    return torch.cat([alpha[:, s] / alpha[:, s].sum(dim=1, keepdim=True) for s in schema.question_slices], dim=1)
