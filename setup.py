from setuptools import find_namespace_packages, setup

requires = [
    "pyramid>=2.0,<3",
    "pyramid_jinja2>=2.10",
    "pyramid_tm>=2.5",
    "pyramid_retry>=2.1",
    "waitress>=3.0",
    "SQLAlchemy>=2.0,<3",
    "alembic>=1.13",
    "zope.sqlalchemy>=3.1",
    "transaction>=4.0",
    "kombu>=5.3",
    "PyMySQL>=1.1",
    "paramiko>=3.4",
    "argon2-cffi>=23.1",
    "pyotp>=2.9",
    "qrcode>=7.4",
    "cryptography>=42",
    "WTForms>=3.1",
    "prometheus_client>=0.20",
    "pydantic>=2.6,<3",
    "pyte>=0.8",
    "regex>=2024.4",
]

testing_requires = [
    "WebTest>=3.0",
    "pytest>=8.0",
    "pytest-xdist>=3.5",
    "playwright>=1.45",
    "schemathesis>=4.0,<5",
    "hypothesis>=6.100",
    "pexpect>=4.9",
]

setup(
    name="ezpyr",
    version="0.1.0",
    description="SSH jump server with a web panel and a two-node cluster",
    # Every directory of ezpyr is a package, the template and static ones
    # too (as namespace packages), so that setuptools installs their files
    # as package data instead of warning once per directory.
    packages=find_namespace_packages(include=["ezpyr", "ezpyr.*", "worker", "worker.*"],
                                     exclude=["*.__pycache__"]),
    include_package_data=True,
    package_data={"": ["*.jinja2"], "ezpyr.static": ["*", "asciinema-player/*"]},
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=requires,
    extras_require={"testing": testing_requires},
    entry_points={
        "paste.app_factory": ["main = ezpyr:main"],
        "console_scripts": [
            "ezpyr-init = ezpyr.scripts.init:main",
            "ezpyr-worker = worker.daemon:main",
            "ezpyr-cluster = ezpyr.scripts.cluster:main",
            "ezpyr-grant-host = ezpyr.scripts.grant_host:main",
            "ezpyr-admin = ezpyr.scripts.admin:main",
            "ezpyr-accounts = ezpyr.scripts.accounts:main",
            "ezpyr-account-agent = ezpyr.accounts.agent:main",
            "ezpyr-gateway = ezpyr.gateway.daemon:main",
            "ezsh = ezpyr.gateway.shell:main",
        ],
    },
)
