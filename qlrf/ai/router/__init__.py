"""The offline AI router (issue 10 item 5): intent -> agent and task type -> tools -> templated answer, no model."""

from qlrf.ai.router.matcher import Route, route
from qlrf.ai.router.offline import OfflineProposer
from qlrf.ai.router.params import Params, Vocabulary, recognise, vocabulary_from

__all__ = ["OfflineProposer", "Params", "Route", "Vocabulary", "recognise", "route", "vocabulary_from"]
