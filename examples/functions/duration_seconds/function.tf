# A drill's measured restore time against the pair's RTO, both in seconds (Terraform 1.8+).
output "rto_headroom_seconds" {
  value = provider::dr::duration_seconds(dr_region_pair.pipelines.rto) - dr_drill.nightly.restore_seconds
}
