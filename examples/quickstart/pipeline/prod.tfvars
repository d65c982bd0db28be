region        = "eu-west-1"
instance_type = "t3.medium"
replicas      = 3
