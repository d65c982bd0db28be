# Adopting what already exists with import blocks (Terraform 1.5+), e.g. after the state file
# was lost: a vault by its URL, a pair by NAME@PRIMARY_VAULT, a drill by NAME@VAULT. Add
# `-generate-config-out=generated.tf` to the plan to have Terraform write the resource blocks.
import {
  to = dr_backup_vault.primary
  id = "vaults/eu-west-1"
}

import {
  to = dr_backup_vault.secondary
  id = "vaults/us-east-1"
}

import {
  to = dr_region_pair.pipelines
  id = "pipelines@vaults/eu-west-1"
}

import {
  to = dr_drill.nightly
  id = "nightly@vaults/us-east-1"
}
