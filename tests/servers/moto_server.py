"""Loopback AWS for the connector tests and the benchmark: a moto server, an estate seeder, a fault proxy.

Everything here talks to moto through real boto3 clients over HTTP, exactly as the connector does.

- `start_moto_thread()` runs `moto.server.ThreadedMotoServer` in this process (tests: ~0.2 s to start).
- `MotoProcess` runs `python -m moto.server` in a child process (benchmark: the server's CPU work
  does not share a GIL with the client being measured, just as Cloud Custodian's subprocess does not).
- `seed_region()` builds a small, known estate in one account/region: tagged instances, own AMIs,
  an Auto Scaling group on a launch template whose $Latest differs from $Default, EBS snapshots.
- `FaultProxy` forwards to moto and lets a test answer chosen requests itself (throttling, OptInRequired,
  AccessDenied, ExpiredToken), so retries and partial failures go through botocore for real.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import boto3

from tests.fakes.base import FakeHandler, FaultRule, HttpFake, RecordedRequest, free_port

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAQLRFTESTKEY00001",
    "AWS_SECRET_ACCESS_KEY": "qlrf-fake-secret-DO-NOT-LOG",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Environment that could point boto3 elsewhere than the loopback server.
SCRUB = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
MOTO_DEFAULT_ACCOUNT = "123456789012"


def loopback_overrides(endpoint: str, tmpdir: str) -> dict[str, str]:
    """Variables that point boto3 (and custodian) at `endpoint` with fake credentials and no real config."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.path.join(tmpdir, "aws-config-none"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmpdir, "aws-credentials-none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def loopback_env(endpoint: str, tmpdir: str) -> dict[str, str]:
    """A whole environment for a subprocess: this one minus AWS_PROFILE & co, plus the overrides."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(loopback_overrides(endpoint, tmpdir))
    return env


def use_loopback(monkeypatch: object, endpoint: str, tmpdir: str) -> None:
    """The same for this process through a pytest MonkeyPatch (undone after the test or module)."""
    for key in SCRUB:
        monkeypatch.delenv(key, raising=False)  # type: ignore[attr-defined]
    for key, value in loopback_overrides(endpoint, tmpdir).items():
        monkeypatch.setenv(key, value)  # type: ignore[attr-defined]


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def start_moto_thread(*, default_amis: bool = True) -> Iterator[str]:
    """A moto server on a free loopback port in this process; yields its URL.

    default_amis=False skips moto's ~1,300 public Amazon AMIs (and their snapshots) per region: each
    new account/region then starts in milliseconds instead of about a second.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    previous = os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS")
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "true" if default_amis else "false"
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port)
        yield url
    finally:
        # moto's backends are process-global: empty them so no later test in this process sees our estate.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
        server.stop()
        if previous is None:
            os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)
        else:
            os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = previous


class MotoProcess:
    """`python -m moto.server` in a child process (own process group), stopped by pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> MotoProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------


@dataclass
class SeededRegion:
    account: str
    region: str
    instance_ids: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # role (v1, v2, public) -> AMI id
    asg_name: str = ""
    asg_members: list[str] = field(default_factory=list)
    asg_would_launch: str = ""
    launch_template_id: str = ""
    newest_snapshot: dict[str, str] = field(default_factory=dict)  # volume id -> newest completed snapshot
    volume_owner: dict[str, str] = field(default_factory=dict)  # volume id -> instance id


def seed_region(
    session: boto3.Session,
    region: str,
    *,
    instances: int,
    endpoint: str | None = None,
    batch: int = 100,
    asg_size: int = 2,
    snapshot_every: int = 1,
    second_snapshot_every: int = 3,
    workers: int = 8,
    unique_names: bool = True,
) -> SeededRegion:
    """Seed one account/region. `instances` counts plain instances; the ASG adds `asg_size` more.

    AMIs: two own images (golden v1 and v2, tagged) plus one of moto's public Amazon images; plain
    instances cycle through the three per batch. The group's launch template has version 1 ($Default,
    golden v1) and version 2 (golden v2); the group uses $Latest, so its members launch on v2. A third
    version (the public image) is added afterwards: the group now "would launch" the public image,
    while its members still run v2 and $Default still says v1.
    Snapshots: every `snapshot_every`-th attached volume gets one, every `second_snapshot_every`-th
    of those a second, newer one.
    """
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint)
    asg = session.client("autoscaling", region_name=region, endpoint_url=endpoint)
    account = session.client("sts", region_name=region, endpoint_url=endpoint).get_caller_identity()[
        "Account"
    ]
    out = SeededRegion(account=account, region=region)
    amazon = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"]
    if amazon:
        public = amazon[0]["ImageId"]
    else:  # moto without its default AMIs: publish one of our own instead
        public = ec2.register_image(Name="base-public", Description="public base image")["ImageId"]
        ec2.modify_image_attribute(ImageId=public, LaunchPermission={"Add": [{"Group": "all"}]})
    for version in ("v1", "v2"):
        ami = ec2.register_image(Name=f"golden-web-{version}", Description=f"golden web {version}")["ImageId"]
        ec2.create_tags(
            Resources=[ami],
            Tags=[{"Key": "family", "Value": "golden-web"}, {"Key": "version", "Value": version}],
        )
        out.images[version] = ami
    out.images["public"] = public
    choices = [out.images["v1"], out.images["v2"], public]
    sites = ("lon1", "fra1", "nyc1")
    envs = ("prod", "staging", "Development")
    done = 0
    b = 0
    while done < instances:
        n = min(batch, instances - done)
        tags = [
            {"Key": "site", "Value": sites[b % len(sites)]},
            {"Key": "environment", "Value": envs[b % len(envs)]},
            {"Key": "owner", "Value": f"team-{b % 4}"},
            {"Key": "Name", "Value": f"app-{region}-{b}"},
        ]
        resp = ec2.run_instances(
            ImageId=choices[b % len(choices)],
            MinCount=n,
            MaxCount=n,
            InstanceType="t3.micro",
            Placement={"AvailabilityZone": f"{region}a"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        out.instance_ids.extend(i["InstanceId"] for i in resp["Instances"])
        for inst in resp["Instances"]:
            for bdm in inst.get("BlockDeviceMappings") or []:
                out.volume_owner[bdm["Ebs"]["VolumeId"]] = inst["InstanceId"]
        done += n
        b += 1
    if unique_names:

        def name(pair: tuple[int, str]) -> None:
            i, iid = pair
            ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": f"vm-{region}-{i:05d}"}])

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(name, enumerate(out.instance_ids)))

    lt = ec2.create_launch_template(
        LaunchTemplateName=f"web-{region}",
        LaunchTemplateData={"ImageId": out.images["v1"], "InstanceType": "t3.micro"},
    )["LaunchTemplate"]
    ec2.create_launch_template_version(
        LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"ImageId": out.images["v2"]}
    )
    out.launch_template_id = lt["LaunchTemplateId"]
    out.asg_name = f"web-asg-{region}"
    asg.create_auto_scaling_group(
        AutoScalingGroupName=out.asg_name,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=0,
        MaxSize=max(asg_size * 2, 1),
        DesiredCapacity=asg_size,
        AvailabilityZones=[f"{region}a"],
    )
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[out.asg_name])["AutoScalingGroups"][0]
    out.asg_members = sorted(i["InstanceId"] for i in group["Instances"])
    ec2.create_launch_template_version(
        LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"ImageId": out.images["public"]}
    )
    out.asg_would_launch = out.images["public"]
    if out.asg_members:
        members = ec2.describe_instances(InstanceIds=out.asg_members)["Reservations"]
        for res in members:
            for inst in res["Instances"]:
                for bdm in inst.get("BlockDeviceMappings") or []:
                    out.volume_owner[bdm["Ebs"]["VolumeId"]] = inst["InstanceId"]

    volumes = list(out.volume_owner)
    to_snap = volumes[::snapshot_every] if snapshot_every else []
    again = to_snap[::second_snapshot_every] if second_snapshot_every else []

    def snap(vol: str, description: str) -> None:
        out.newest_snapshot[vol] = ec2.create_snapshot(VolumeId=vol, Description=description)["SnapshotId"]

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(snap, to_snap, ["nightly"] * len(to_snap)))
        if again:
            time.sleep(1.05)  # StartTime has one-second resolution in moto: make the second one newer
            list(pool.map(snap, again, ["hourly"] * len(again)))
    return out


def assumed_session(endpoint: str, role_arn: str, region: str = "us-east-1") -> boto3.Session:
    """A session in another (moto) account through STS AssumeRole, for seeding that account."""
    sts = boto3.Session().client("sts", region_name=region, endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="qlrf-seed")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


# --------------------------------------------------------------------------------------------------
# Fault proxy
# --------------------------------------------------------------------------------------------------


@dataclass
class Request:
    service: str  # from the SigV4 credential scope: ec2, autoscaling, sts...
    region: str
    action: str
    params: dict[str, str]


# A rule sees every request; returning (status, xml body) answers it, None forwards it to moto.
Rule = Callable[[Request], "tuple[int, str] | None"]


def ec2_error(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>qlrf-fault-proxy</RequestID></Response>"
    )


def query_error(code: str, message: str, kind: str = "Sender") -> str:
    """The awsquery error shape (STS, Auto Scaling)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>qlrf-fault-proxy</RequestId></ErrorResponse>"
    )


class FaultProxy(HttpFake):
    """HTTP proxy in front of moto: forwards everything except what a rule answers; counts both.

    The server and the recorded requests (``scope`` is the SigV4 region) are the shared loopback
    base's; only the rules (``Request -> (status, xml) | None``) and the forwarding are the proxy's.
    """

    thread_name = "fault-proxy"

    def __init__(self, upstream: str, rules: list[Rule] | None = None) -> None:
        super().__init__()
        self.upstream = urllib.parse.urlsplit(upstream)
        self.rules = list(rules or [])
        self.answered: Counter[tuple[str, str, str]] = Counter()  # (region, action, status) answered here
        self.forwarded: Counter[tuple[str, str]] = Counter()  # (region, action) forwarded to moto
        self._lock = threading.Lock()

    @staticmethod
    def describe(rec: RecordedRequest) -> Request:
        # Authorization: AWS4-HMAC-SHA256 Credential=AKIA.../20261127/eu-west-1/ec2/aws4_request, ...
        authorization = rec.authorization or ""
        service = region = ""
        if "Credential=" in authorization:
            scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
            if len(scope) >= 5:
                region, service = scope[2], scope[3]
        params = dict(urllib.parse.parse_qsl(rec.text))
        return Request(service=service, region=region, action=params.get("Action", ""), params=params)

    def answer(self, req: Request) -> tuple[int, str] | None:
        """The first rule's answer (counted), or None: forward to moto (counted)."""
        for rule in self.rules:
            answer = rule(req)
            if answer is not None:
                with self._lock:
                    self.answered[(req.region, req.action, str(answer[0]))] += 1
                return answer
        with self._lock:
            self.forwarded[(req.region, req.action)] += 1
        return None

    def forward(self, rec: RecordedRequest, target: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        """`rec` sent on to moto as it came (`target`: the raw path and query)."""
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(rec.method, target, body=rec.raw, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()


_HOP_BY_HOP = ("connection", "transfer-encoding", "content-length", "server", "date")


class _ProxyHandler(FakeHandler):
    fake: FaultProxy

    def route(self, rec: RecordedRequest) -> None:
        req = self.fake.describe(rec)
        rec.scope = req.region
        answer = self.fake.answer(req)
        if answer is not None:
            status, text = answer
            return self.send_bytes(status, text.encode(), content_type="text/xml")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        status, upstream_headers, payload = self.fake.forward(rec, self.path, headers)
        passed = {k: v for k, v in upstream_headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-type"}
        content_type = next((v for k, v in upstream_headers if k.lower() == "content-type"), "text/xml")
        return self.send_bytes(status, payload, passed, content_type=content_type)


FaultProxy.handler = _ProxyHandler


def throttle_first(action: str, times: int, *, region: str | None = None) -> Rule:
    """Answer the first `times` calls of `action` (optionally in one region) with a throttling error."""
    budget = FaultRule("throttle", times=times)
    lock = threading.Lock()

    def rule(req: Request) -> tuple[int, str] | None:
        if req.action != action or (region and req.region != region):
            return None
        with lock:
            if not budget.use():
                return None
        if req.service == "ec2":
            return 503, ec2_error("RequestLimitExceeded", "Request limit exceeded.")
        return 400, query_error("Throttling", "Rate exceeded")

    return rule
