# Warns on every plan when the standby's newest snapshot is older than the pair's RPO
# (Terraform 1.8+). plantimestamp() keeps the function pure.
data "dr_snapshot" "standby_latest" {
  vault_id = dr_region_pair.pipelines.secondary_vault_id
}

check "standby_within_rpo" {
  assert {
    condition     = provider::dr::within(data.dr_snapshot.standby_latest.time, dr_region_pair.pipelines.rpo, plantimestamp())
    error_message = "The standby's newest snapshot is older than the pair's RPO (${dr_region_pair.pipelines.rpo})."
  }
}
