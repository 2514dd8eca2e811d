"""AWS Regions: the names latency and geoproximity records may use, and where they are.

The names are the ``ResourceRecordSetRegion`` values of the Route 53 service model (botocore
``route53/2013-04-01/service-2.json``): what ``ResourceRecordSet.Region`` accepts, and what
``GeoProximityLocation.AWSRegion`` names.

AWS does not publish coordinates for its Regions. Each one below is the metro area the Region
is named after in AWS's own display name ("US East (N. Virginia)", "Europe (Frankfurt)", ...),
at city-centre precision rounded to 2 decimals (the precision of Route 53's ``Coordinates``,
about 1 km). Where the display name is a state or a country, the point is the metro the Region
is usually placed in (Ashburn for N. Virginia, Boardman for Oregon, Columbus for Ohio, Zaragoza
for Spain, Querétaro for Mexico ...). This is good enough for the nearest-resource choice of
geoproximity routing, whose answer changes only near the borders between Regions; operators
who need more can give ``Coordinates`` instead of ``AWSRegion``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["REGIONS", "REGION_NAMES"]

# name: (latitude, longitude)
REGIONS: Mapping[str, tuple[float, float]] = {
    "us-east-1": (39.04, -77.49),  # US East (N. Virginia): Ashburn
    "us-east-2": (39.96, -83.00),  # US East (Ohio): Columbus
    "us-west-1": (37.77, -122.42),  # US West (N. California): San Francisco
    "us-west-2": (45.84, -119.70),  # US West (Oregon): Boardman
    "ca-central-1": (45.50, -73.57),  # Canada (Central): Montréal
    "ca-west-1": (51.05, -114.07),  # Canada West (Calgary)
    "mx-central-1": (20.59, -100.39),  # Mexico (Central): Querétaro
    "sa-east-1": (-23.55, -46.63),  # South America (São Paulo)
    "eu-west-1": (53.35, -6.26),  # Europe (Ireland): Dublin
    "eu-west-2": (51.51, -0.13),  # Europe (London)
    "eu-west-3": (48.86, 2.35),  # Europe (Paris)
    "eu-central-1": (50.11, 8.68),  # Europe (Frankfurt)
    "eu-central-2": (47.38, 8.54),  # Europe (Zurich)
    "eu-north-1": (59.33, 18.07),  # Europe (Stockholm)
    "eu-south-1": (45.46, 9.19),  # Europe (Milan)
    "eu-south-2": (41.65, -0.88),  # Europe (Spain): Zaragoza, Aragón
    "eusc-de-east-1": (52.40, 13.06),  # AWS European Sovereign Cloud: Brandenburg (Potsdam)
    "il-central-1": (32.09, 34.78),  # Israel (Tel Aviv)
    "me-south-1": (26.23, 50.59),  # Middle East (Bahrain): Manama
    "me-central-1": (24.45, 54.38),  # Middle East (UAE): Abu Dhabi
    "af-south-1": (-33.92, 18.42),  # Africa (Cape Town)
    "ap-south-1": (19.08, 72.88),  # Asia Pacific (Mumbai)
    "ap-south-2": (17.39, 78.49),  # Asia Pacific (Hyderabad)
    "ap-east-1": (22.32, 114.17),  # Asia Pacific (Hong Kong)
    "ap-east-2": (25.03, 121.57),  # Asia Pacific (Taipei)
    "ap-northeast-1": (35.68, 139.69),  # Asia Pacific (Tokyo)
    "ap-northeast-2": (37.57, 126.98),  # Asia Pacific (Seoul)
    "ap-northeast-3": (34.69, 135.50),  # Asia Pacific (Osaka)
    "ap-southeast-1": (1.35, 103.82),  # Asia Pacific (Singapore)
    "ap-southeast-2": (-33.87, 151.21),  # Asia Pacific (Sydney)
    "ap-southeast-3": (-6.21, 106.85),  # Asia Pacific (Jakarta)
    "ap-southeast-4": (-37.81, 144.96),  # Asia Pacific (Melbourne)
    "ap-southeast-5": (3.14, 101.69),  # Asia Pacific (Malaysia): Kuala Lumpur
    "ap-southeast-6": (-36.85, 174.76),  # Asia Pacific (New Zealand): Auckland
    "ap-southeast-7": (13.76, 100.50),  # Asia Pacific (Thailand): Bangkok
    "cn-north-1": (39.90, 116.41),  # China (Beijing)
    "cn-northwest-1": (38.49, 106.23),  # China (Ningxia): Yinchuan
    "us-gov-east-1": (39.96, -83.00),  # AWS GovCloud (US-East): Ohio
    "us-gov-west-1": (45.52, -122.68),  # AWS GovCloud (US-West): Pacific Northwest
}

REGION_NAMES = frozenset(REGIONS)
