"""AWS live discovery through botocore (the SDK under boto3): EC2 instances, the AMIs they run, Auto Scaling groups, EBS snapshots.

What it lists, per account x region (scope `aws:<account>/<region>`):

| call (paginated where AWS pages)                           | becomes                                          |
|------------------------------------------------------------|--------------------------------------------------|
| ec2 DescribeInstances (1000 per page)                      | Normalised.vms via qlrf.inventory.normalize.aws.instance_row |
| autoscaling DescribeAutoScalingGroups (100 per page)       | facts["scaling_groups"]                          |
| ec2 DescribeLaunchTemplateVersions ($Default/$Latest/n,    | scaling group `would_launch_image` (one call per |
|   all versions a template is used with in one call)        | template; `resolve:ssm:` ids via ssm GetParameters) |
| autoscaling DescribeLaunchConfigurations (50 per call)     | scaling group `would_launch_image`               |
| ec2 DescribeImages (image-id filter, 200 ids per call)     | facts["images"]: every AMI an instance runs or a |
|                                                            | group would launch (found=False if AWS no longer shows it) |
| ec2 DescribeSnapshots, owned + completed (1000 per page);  | Normalised.snapshots via snapshot_row: the newest |
|   or by volume-id filter, 200 volumes per call             | completed snapshot of each attached volume       |

Accounts: the default credential chain (unless `include_default=False`) plus every role in
`role_arns`, assumed with STS from the default chain. Regions: the configured list, or every region
enabled in each account (DescribeRegions). Account x region scopes run concurrently on one thread
pool; inside a scope the instance listing, the scaling-group look-ups and the snapshot listing
overlap on a second pool of leaf calls (which never wait on that pool themselves, so it cannot
deadlock). Each worker thread keeps one botocore Session per account; all sessions share one botocore
loader, so the large EC2 service model is parsed once per process, not once per thread or run.

Failures never raise: an account that cannot be assumed or has no/expired credentials is recorded as
`aws:<account>/*`; a region whose instance listing fails as `aws:<account>/<region>` (no VM rows from
it); a region whose instances were read but one of the other look-ups failed as
`aws:<account>/<region>:<part>` (part = images | scaling_groups | snapshots; its VMs are kept).
Reasons name the account or role ARN and the AWS error code, never a credential.

Throttling: every client uses botocore's adaptive retry mode (client-side rate limiting plus
exponential backoff) with `max_attempts` 10, which botocore counts as retries after the first call.

Modules: `config` (AwsConfig, config_from_env), `sessions` (botocore clients and retries, STS,
error reasons), `facts` (AMIs, Auto Scaling groups, launch templates/configurations, snapshots ->
rows), `discovery` (discover: the accounts x regions fan-out).
"""

from qlrf.inventory.connectors.aws.config import AwsConfig, config_from_env
from qlrf.inventory.connectors.aws.discovery import discover
from qlrf.inventory.connectors.aws.facts import image_fact
from qlrf.inventory.connectors.aws.sessions import client_config

__all__ = ["AwsConfig", "client_config", "config_from_env", "discover", "image_fact"]
