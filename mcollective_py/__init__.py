"""mcollective-py: a Python MCollective 2.x client, node daemon and delivery toolkit.

Speaks the native MCollective wire format (Ruby Marshal bodies, psk/ssl security,
RabbitMQ exchanges) so it interoperates with existing Ruby ``mcollectived`` nodes.
"""

__version__ = "0.1.0"
