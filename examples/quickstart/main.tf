# Quickstart: configure the dr provider. `scripts/quickstart` runs init and apply here.
#
# The backup vault, region pair and drill resources arrive with issue 4; until then this
# example proves the provider starts under Terraform with AutoMTLS and accepts its block.

terraform {
  required_providers {
    dr = {
      source = "registry.terraform.io/dr-project/dr"
    }
  }
}

provider "dr" {
  work_dir = "${path.module}/.dr-work"
}

output "provider_ready" {
  value = "terraform-provider-dr answered; run `terraform providers schema -json` to see its schema"
}
