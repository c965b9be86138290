import pytest

from qlrf.inventory.instance_types import (
    InstanceTypesError,
    Size,
    default_instance_types,
    load_instance_types,
)


def test_cloud_types_are_looked_up_and_vsphere_sizes_parsed():
    types = default_instance_types()
    assert types.size_of("aws", "m6i.xlarge") == Size(4, 16)
    assert types.size_of("gcp", "c3-standard-8") == Size(8, 32)
    assert types.size_of("vsphere", "4vCPU-8192MB") == Size(4, 8.0)


def test_unknown_types_are_none_never_zero():
    types = default_instance_types()
    assert types.size_of("aws", "x9.huge") is None
    assert types.size_of("vsphere", "big") is None
    assert types.size_of("azure", None) is None


def test_every_type_in_the_sample_estate_is_known():
    types = default_instance_types()
    for platform, name in [("aws", "t3.medium"), ("aws", "c6i.2xlarge"), ("aws", "r6i.large"),
                           ("azure", "Standard_D2s_v5"), ("azure", "Standard_E4s_v5"), ("gcp", "e2-standard-2"),
                           ("gcp", "n2-standard-4")]:
        assert types.size_of(platform, name) is not None, name


def test_a_malformed_file_names_the_entry(tmp_path):
    bad = tmp_path / "types.yaml"
    bad.write_text("version: 1\nplatforms:\n  aws:\n    m5.large: {vcpu: 0, memory_gib: 8}\n")
    with pytest.raises(InstanceTypesError, match=r"types.yaml: platforms.aws.m5.large.vcpu"):
        load_instance_types(bad)


def test_table_has_one_row_per_type():
    table = default_instance_types().table()
    assert table.num_rows == len(default_instance_types().sizes)
    assert set(table.column_names) == {"platform", "instance_type", "vcpu", "memory_gib"}
