"""The event bridge: CloudEvents out of the task store and sensors (outbox -> relay -> broker) and in (sensor).

Modules: ``contract`` (types, schemas, builder, parser), ``outbox`` (table, task-store hook), ``relay``
(outbox -> transport, ack-gated), ``transports/nats`` (JetStream), ``inbound`` (parse, validate, map to
work), ``wiring`` (an evented TaskStore). Nothing heavy is imported here.
"""
