"""The offline AI router (issue 10 item 5): intent -> agent and task type -> tools -> templated answer, no model."""
