"""Alerts: run failures, drift-threshold breaches, revoked images, approvals about to expire.

Plain Python (no Dagster): the sensors in ``sensors/`` build :class:`~qlrf.alerts.model.Alert`
objects and hand them to a :class:`~qlrf.alerts.dispatch.Dispatcher`, which sends each to every
configured channel (:mod:`qlrf.alerts.channels`):

* generic JSON webhook: ``POST`` of ``Alert.payload()`` (``Content-Type: application/json``),
  optionally with a bearer token;
* Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Teams workflows):
  ``{"text": ..., "blocks": [...]}``;
* SMTP email (``smtplib``): STARTTLS (default), implicit TLS or plain, login when a user is set.

Deduplication: an alert's ``key`` names the thing it is about (``run_failure|<run id>``,
``approval_expiring|<task id>`` ...). Once a channel has delivered a key, the same key is not sent
to that channel again within the dedup window. Deliveries are recorded (:mod:`qlrf.alerts.ledger`) in
the ``rf_alert_ledger`` table of the remediation database (``qlrf.db.engine_for``: SQLite under
``QLRF_HOME`` or ``QLRF_POSTGRES_URL``, created with the task and audit tables), so the window
survives restarts and is shared by every process. Records older than the retention are pruned each
time the dispatcher records a delivery, so the table stays bounded. Each record holds the alert's
severity and title; with no channel configured, alerts are recorded under the channel ``none``
instead of being dropped, and :func:`qlrf.alerts.ledger.list_alerts` (``qlrf alerts list``) returns
them. A channel
that fails is logged (and retried on the next occurrence of the key); it never stops the others.

Secrets (webhook URLs carry their key in the path, tokens, the SMTP password) are never logged,
never put in an exception message of this module and never written to the audit log: channels
describe themselves by kind and host only, and error texts are scrubbed of every configured secret.

Configuration (environment, read when ``channels.channels_from_env`` / ``dispatch.Dispatcher.from_env``
is called, never at import):

=============================  ==========================================================  ===========
variable                       meaning                                                     default
=============================  ==========================================================  ===========
QLRF_ALERT_WEBHOOK_URL         generic JSON webhook (http/https); secret if it has a key    unset: off
QLRF_ALERT_WEBHOOK_TOKEN       bearer token sent to the JSON webhook (secret)               none
QLRF_ALERT_SLACK_URL           Slack-compatible incoming-webhook URL (secret)               unset: off
QLRF_SMTP_HOST                 SMTP server; email is on when host, from and to are set      unset: off
QLRF_SMTP_PORT                 SMTP port                                                    587 (465 for ssl)
QLRF_SMTP_TLS                  ``starttls`` | ``ssl`` (implicit TLS) | ``none``              starttls
QLRF_SMTP_USER                 login user (no login when unset)                             none
QLRF_SMTP_PASSWORD             login password (secret)                                      none
QLRF_SMTP_FROM                 sender address                                               required
QLRF_SMTP_TO                   recipients, comma-separated                                  required
QLRF_ALERT_DEDUP_HOURS         window in which a key is not re-sent to a channel            6
QLRF_ALERT_RETENTION_DAYS      ledger records older than this are deleted (>= the window)   30
QLRF_ALERT_MIN_SEVERITY        ``info`` | ``warning`` | ``critical``: lower ones are dropped  info
QLRF_ALERT_TIMEOUT             seconds per delivery attempt                                 10
QLRF_DAGSTER_UI_URL            base URL of the Dagster UI, for links to failed runs         none
=============================  ==========================================================  ===========

Modules, in the order data flows through them: ``model`` (the alert, severities, keys), ``channels``
(where alerts go), ``ledger`` (what was delivered when), ``dispatch`` (the dispatcher tying them).
"""
