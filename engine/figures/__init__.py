"""Figures from finished land-cover maps: class areas per zone, change between two dates.

They read maps (a `predict` GeoTIFF or a region's VRT) block by block and sit beside
`evaluate`, not inside `predict`; `predict` and `region` call them at the end when asked.
"""
