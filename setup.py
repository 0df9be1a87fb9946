from setuptools import find_packages, setup

setup(
    name="kzoo",
    version="0.1.0",
    description="Regularizers for semi-supervised and supervised learning in Keras 3 "
    "(VAT, latent VAT, GAN manifold regularization, Manifold Mixup, ALI)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kzoo", "kzoo.*"]),
    package_data={"kzoo": ["_data/*.npz"]},
    python_requires=">=3.10",
    # The core needs Keras and numpy only (it trains on JAX without TensorFlow);
    # requirements.txt pins the full, tested environment.
    install_requires=["keras==3.15.1", "numpy>=1.26"],
    extras_require={
        "tensorflow": ["tensorflow==2.21.0", "tensorflow-datasets==4.9.10"],
        "jax": ["jax==0.10.2", "jaxlib==0.10.2"],
        "benchmarks": ["scikit-learn==1.9.1", "matplotlib==3.11.2"],
    },
    entry_points={"console_scripts": ["kzoo=kzoo.cli:main"]},
)
